"""Framework-agnostic part of the ACE learner: batch/forward-output and metric keys."""

from __future__ import annotations

# Forward-pass outputs of the ACE RL module (per action dimension, shape [B, A]).
LOGP_PER_DIM = "logp_resampled_per_dim"
LOGP_NEXT_PER_DIM = "logp_next_resampled_per_dim"

# Metric keys (per module, reported by the learner).
CAUSAL_WEIGHTED_LOGP_KEY = "causal_weighted_logp"
DORMANCY_RATIO_KEY = "policy_grad_dormancy_ratio"
NUM_POLICY_UPDATES_KEY = "num_policy_updates"
NUM_GRADIENT_UPDATES_KEY = "num_gradient_updates"

# Learner-state key (checkpointed by ``ACETorchLearner.get_state``).
ACE_LEARNER_STATE = "ace"
