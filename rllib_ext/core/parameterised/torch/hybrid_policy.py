"""What every on-policy module over a parameterised (hybrid) action space shares: the
``model_config`` keys of the hybrid policy, the action distribution they select, and the
parameters' standard deviation.

Used by :class:`~rllib_ext.core.parameterised.torch.hybrid_ppo_rl_module.HybridPPOTorchRLModule`
(H-PPO, RLlib's PPO) and by PG's default module when the action space is parameterised.

``model_config`` keys: :data:`LOGP_MODE_KEY` ("chosen" | "all"), :data:`BOUND_KEY`
("tanh_mean" | "squashed"), :data:`SIGMA_TYPE_KEY` (:data:`SIGMA_TYPES`),
:data:`INITIAL_SIGMA_KEY`, :data:`PARAM_LAYOUT_KEY` (``[P_1, ..., P_K]`` for a flat
``Tuple(Discrete(K), Box(P))`` space, as the parameterised algorithms' ``param_layout``).

The pi head outputs ``[K logits | P means | P log-stds]``; the parameters' standard deviation is

- ``"fixed"`` (DI-engine's H-PPO: 0.3): ``initial_sigma`` for ever;
- ``"state_independent"``: one learned log-std per parameter, starting at ``initial_sigma``;
- ``"state_dependent"``: the head's own log-std outputs.

(For the first two the head's log-std columns are replaced, so their weights get no gradient.)
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns

from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.torch.hybrid_distribution import (
    BOUNDS,
    LOGP_MODES,
    TorchHybridDistribution,
)

LOGP_MODE_KEY = "hybrid_logp_mode"
BOUND_KEY = "hybrid_bound"
SIGMA_TYPE_KEY = "hybrid_sigma"
INITIAL_SIGMA_KEY = "hybrid_initial_sigma"
PARAM_LAYOUT_KEY = "param_layout"
#: How the parameters' standard deviation is produced (module docstring).
SIGMA_TYPES = ("fixed", "state_independent", "state_dependent")
#: Defaults: DI-engine's H-PPO on gym-hybrid (chosen-action likelihood is Fan et al.'s).
DEFAULTS = {LOGP_MODE_KEY: "chosen", BOUND_KEY: "tanh_mean", SIGMA_TYPE_KEY: "fixed",
            INITIAL_SIGMA_KEY: 0.3, PARAM_LAYOUT_KEY: None}


def is_hybrid_space(action_space: gym.Space) -> bool:
    """A ``Tuple`` whose first part is ``Discrete``: the parameterised forms (whether its
    parameters are well formed is :func:`layout_from_space`'s to say)."""
    return (isinstance(action_space, gym.spaces.Tuple) and len(action_space.spaces) > 0
            and isinstance(action_space.spaces[0], gym.spaces.Discrete))


def hybrid_options(model_config: dict) -> dict:
    """The module's hybrid keys with defaults filled in; ``ValueError`` naming a bad one."""
    options = {key: model_config.get(key, default) for key, default in DEFAULTS.items()}
    for key, choices in ((LOGP_MODE_KEY, LOGP_MODES), (BOUND_KEY, BOUNDS),
                         (SIGMA_TYPE_KEY, SIGMA_TYPES)):
        if options[key] not in choices:
            raise ValueError(f"model_config[{key!r}]={options[key]!r} must be one of "
                             f"{list(choices)}.")
    sigma = options[INITIAL_SIGMA_KEY]
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"model_config[{INITIAL_SIGMA_KEY!r}]={sigma!r} must be a number "
                         "> 0, e.g. 0.3.")
    return options


def hybrid_action_dist_cls(action_space: gym.Space, model_config: dict):
    """:class:`TorchHybridDistribution` bound to the space's layout and the module's options
    (what a catalog's ``get_action_dist_cls`` returns)."""
    options = hybrid_options(model_config)
    layout = layout_from_space(action_space, options[PARAM_LAYOUT_KEY])
    return TorchHybridDistribution.get_partial_dist_cls(
        space=action_space, layout=layout, logp_mode=options[LOGP_MODE_KEY],
        bound=options[BOUND_KEY])


class HybridSigma:
    """Mixin for a torch RL module whose pi head feeds :class:`TorchHybridDistribution`: call
    :meth:`setup_hybrid_sigma` in ``setup`` and pass every forward's output through
    :meth:`complete_hybrid_inputs` (which writes the fixed or learned log-stds)."""

    def setup_hybrid_sigma(self) -> None:
        options = hybrid_options(self.model_config)
        self.sigma_type = options[SIGMA_TYPE_KEY]
        self.num_params = layout_from_space(self.action_space,
                                            options[PARAM_LAYOUT_KEY]).total_params
        initial = torch.full((self.num_params,), math.log(options[INITIAL_SIGMA_KEY]))
        if self.sigma_type == "state_independent":
            self.log_std = torch.nn.Parameter(initial)
        else:
            self.register_buffer("log_std", initial)

    def complete_hybrid_inputs(self, out: dict[str, Any]) -> dict[str, Any]:
        """Writes the fixed or learned log-stds into the distribution inputs."""
        if self.sigma_type != "state_dependent" and self.num_params:
            inputs = out[Columns.ACTION_DIST_INPUTS]
            log_std = self.log_std.expand(*inputs.shape[:-1], self.num_params)
            out[Columns.ACTION_DIST_INPUTS] = torch.cat(
                [inputs[..., :-self.num_params], log_std], dim=-1)
        return out
