"""Framework-agnostic part of the PA-DDPG learner: batch and metric keys (the ε schedule is
shared with P-DQN, :class:`~rllib_ext.algorithms.parameterised.parameterised_learner.
EpsilonScheduleLearner`)."""

from __future__ import annotations

from rllib_ext.algorithms.parameterised.parameterised_learner import EpsilonScheduleLearner

#: Batch column / module output: (B, K) float32 discrete-action scores the actor proposed (random
#: ones on exploratory steps); the critic sees them next to the parameters.
ACTION_SCORES = "action_scores"

# Metric keys (per module).
CRITIC_LOSS_KEY = "critic_loss"
ACTOR_LOSS_KEY = "actor_loss"
Q_MEAN_KEY = "q_mean"
TARGET_MEAN_KEY = "td_target_mean"
ACTION_GRAD_NORM_KEY = "action_grad_norm"
PARAMS_OUT_OF_BOUNDS_KEY = "params_out_of_bounds"
SCORES_OUT_OF_BOUNDS_KEY = "scores_out_of_bounds"


class PADDPGLearner(EpsilonScheduleLearner):
    """PA-DDPG's learner: the shared ε schedule; the losses live in
    :class:`~rllib_ext.algorithms.paddpg.torch.paddpg_torch_learner.PADDPGTorchLearner`."""
