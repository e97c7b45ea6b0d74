"""PA-DDPG's own batch and metric keys (framework-agnostic). The shared
keys and the ε schedule are in :mod:`rllib_ext.core.parameterised.parameterised_learner`;
the losses in :class:`~rllib_ext.algorithms.paddpg.torch.paddpg_torch_learner.
PADDPGTorchLearner`."""

from __future__ import annotations

#: Batch column / module output: (B, K) float32 discrete-action scores the actor proposed (random
#: ones on exploratory steps); the critic sees them next to the parameters.
ACTION_SCORES = "action_scores"

# Metric keys (per module).
#: The critic's TD loss.
CRITIC_LOSS_KEY = "critic_loss"
#: The actor's loss, -Q(s, mu(s)).
ACTOR_LOSS_KEY = "actor_loss"
#: Fraction of the proposed action scores outside [-1, 1].
SCORES_OUT_OF_BOUNDS_KEY = "scores_out_of_bounds"
