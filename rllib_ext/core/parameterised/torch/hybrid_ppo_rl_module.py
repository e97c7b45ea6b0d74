"""An actor-critic RL module for parameterised (hybrid) action spaces that RLlib's own PPO
trains: ``PPOConfig().rl_module(rl_module_spec=RLModuleSpec(module_class=
HybridPPOTorchRLModule, model_config={...}))``.

It is RLlib's ``DefaultPPOTorchRLModule`` (the catalog's encoder from ``fcnet_hiddens``, shared
with the value function when ``vf_share_layers``, the pi and value heads, ``compute_values``)
whose action distribution is :class:`~rllib_ext.core.parameterised.torch.hybrid_distribution.
TorchHybridDistribution` instead of RLlib's joint Tuple distribution. The pi head outputs
``[K logits | P means | P log-stds]``; the standard deviation of the parameters is
:data:`SIGMA_TYPES`:

- ``"fixed"`` (DI-engine's H-PPO: 0.3): ``initial_sigma`` for ever;
- ``"state_independent"``: one learned log-std per parameter, starting at ``initial_sigma``;
- ``"state_dependent"``: the head's own log-std outputs.

(For the first two the head's log-std columns are replaced, so their weights get no gradient.)

``model_config`` keys besides RLlib's: :data:`LOGP_MODE_KEY` ("chosen" | "all"),
:data:`BOUND_KEY` ("tanh_mean" | "squashed"), :data:`SIGMA_TYPE_KEY`,
:data:`INITIAL_SIGMA_KEY`, :data:`PARAM_LAYOUT_KEY` (``[P_1, ..., P_K]`` for a flat
``Tuple(Discrete(K), Box(P))`` space, as the parameterised algorithms' ``param_layout``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.torch.hybrid_distribution import (
    BOUNDS,
    LOGP_MODES,
    TorchHybridDistribution,
)
from rllib_ext.core.rllib_compat import catalog_model_config

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


class HybridPPOCatalog(PPOCatalog):
    """PPO's catalog with the hybrid action distribution (bound to the space's layout and the
    module's options)."""

    def get_action_dist_cls(self, framework: str):
        options = hybrid_options(catalog_model_config(self))
        layout = layout_from_space(self.action_space, options[PARAM_LAYOUT_KEY])
        return TorchHybridDistribution.get_partial_dist_cls(
            space=self.action_space, layout=layout, logp_mode=options[LOGP_MODE_KEY],
            bound=options[BOUND_KEY])


class HybridPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's PPO module with the hybrid action distribution (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = HybridPPOCatalog
        super().__init__(*args, **kwargs)

    @override(DefaultPPOTorchRLModule)
    def setup(self):
        super().setup()
        options = hybrid_options(self.model_config)
        self.sigma_type = options[SIGMA_TYPE_KEY]
        self.num_params = layout_from_space(self.action_space,
                                            options[PARAM_LAYOUT_KEY]).total_params
        initial = torch.full((self.num_params,), math.log(options[INITIAL_SIGMA_KEY]))
        if self.sigma_type == "state_independent":
            self.log_std = torch.nn.Parameter(initial)
        else:
            self.register_buffer("log_std", initial)

    def _complete(self, out: dict[str, Any]) -> dict[str, Any]:
        """Writes the fixed or learned log-stds into the distribution inputs."""
        if self.sigma_type != "state_dependent" and self.num_params:
            inputs = out[Columns.ACTION_DIST_INPUTS]
            log_std = self.log_std.expand(*inputs.shape[:-1], self.num_params)
            out[Columns.ACTION_DIST_INPUTS] = torch.cat(
                [inputs[..., :-self.num_params], log_std], dim=-1)
        return out

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._complete(super()._forward(batch, **kwargs))

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._complete(super()._forward_train(batch, **kwargs))
