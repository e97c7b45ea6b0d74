"""ACE's batch/forward-output and metric keys (framework-agnostic)."""

from __future__ import annotations

# Forward-pass outputs of the ACE RL module (per action dimension, shape [B, A]).
LOGP_PER_DIM = "logp_resampled_per_dim"
LOGP_NEXT_PER_DIM = "logp_next_resampled_per_dim"
# min_j Q_j(s, a), a ~ pi(.|s) (critics frozen), and min_j Q'_j(s', a'), a' ~ pi(.|s').
Q_CURR = "q_curr"
Q_TARGET_NEXT = "q_target_next"

# Metric keys (per module, reported by the learner; the ``ace`` result repeats the counters).
CAUSAL_WEIGHTED_LOGP_KEY = "causal_weighted_logp"
DORMANCY_RATIO_KEY = "dormancy_ratio"
NUM_POLICY_UPDATES_KEY = "num_policy_updates"
NUM_GRADIENT_UPDATES_KEY = "num_gradient_updates"
ALPHA_LOSS_KEY = "alpha_loss"
ALPHA_VALUE_KEY = "alpha_value"

# Learner-state key (checkpointed by ``ACETorchLearner.get_state``).
ACE_LEARNER_STATE = "ace"

#: ``critic_loss`` values: "mse" = the reference's mean squared TD error, "huber" = RLlib SAC's
#: Huber loss (delta 1).
CRITIC_LOSSES = ("mse", "huber")
