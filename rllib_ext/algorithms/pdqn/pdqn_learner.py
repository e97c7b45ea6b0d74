"""Framework-agnostic part of the P-DQN learner: metric keys (batch keys and the ε schedule
are shared with PA-DDPG in :mod:`rllib_ext.algorithms.parameterised.parameterised_learner`)."""

from __future__ import annotations

from rllib_ext.algorithms.parameterised.parameterised_learner import EpsilonScheduleLearner

# Metric keys (per module).
Q_LOSS_KEY = "q_loss"
PARAM_LOSS_KEY = "param_loss"
Q_MEAN_KEY = "q_mean"
TARGET_MEAN_KEY = "td_target_mean"
ACTION_GRAD_NORM_KEY = "action_grad_norm"
PARAMS_OUT_OF_BOUNDS_KEY = "params_out_of_bounds"


class PDQNLearner(EpsilonScheduleLearner):
    """P-DQN's learner: the ε schedule of every parameterised-action learner; the losses live
    in :class:`~rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner.PDQNTorchLearner`."""
