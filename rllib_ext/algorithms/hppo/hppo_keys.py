"""H-PPO's own metric keys (per module; PPO's keys are RLlib's). The losses are in
:class:`~rllib_ext.algorithms.hppo.torch.hppo_torch_learner.HPPOTorchLearner`."""

from __future__ import annotations

#: -(clipped surrogate of the discrete-action ratio), the first of H-PPO's two surrogates.
DISCRETE_POLICY_LOSS_KEY = "discrete_policy_loss"
#: -(clipped surrogate of the parameter ratio), the second.
CONTINUOUS_POLICY_LOSS_KEY = "continuous_policy_loss"
#: Entropy of the discrete choice, H(k).
DISCRETE_ENTROPY_KEY = "discrete_entropy"
#: Entropy of the parameters, E_k[H(x | k)] (pre-squash for bound="squashed").
CONTINUOUS_ENTROPY_KEY = "continuous_entropy"
#: Share of samples whose discrete / continuous ratio was clipped.
DISCRETE_CLIP_FRACTION_KEY = "discrete_clip_fraction"
CONTINUOUS_CLIP_FRACTION_KEY = "continuous_clip_fraction"
#: The parameters' standard deviation, averaged over slots and samples.
PARAM_STD_KEY = "param_std"
