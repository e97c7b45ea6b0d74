"""P-DQN's own metric keys (framework-agnostic). Batch keys, the shared
metric keys and the ε schedule are in
:mod:`rllib_ext.core.parameterised.parameterised_learner`; the losses in
:class:`~rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner.PDQNTorchLearner`."""

from __future__ import annotations

# Metric keys (per module).
#: The Q-network's TD loss.
Q_LOSS_KEY = "q_loss"
#: The parameter network's loss, -sum_k Q(s, k, x_k(s)) (or its weighting).
PARAM_LOSS_KEY = "param_loss"
