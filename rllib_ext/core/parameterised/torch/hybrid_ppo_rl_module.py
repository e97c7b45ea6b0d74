"""An actor-critic RL module for parameterised (hybrid) action spaces that RLlib's own PPO
trains: ``PPOConfig().rl_module(rl_module_spec=RLModuleSpec(module_class=
HybridPPOTorchRLModule, model_config={...}))``.

It is RLlib's ``DefaultPPOTorchRLModule`` (the catalog's encoder from ``fcnet_hiddens``, shared
with the value function when ``vf_share_layers``, the pi and value heads, ``compute_values``)
whose action distribution is :class:`~rllib_ext.core.parameterised.torch.hybrid_distribution.
TorchHybridDistribution` instead of RLlib's joint Tuple distribution; its ``model_config`` keys
and the parameters' standard deviation are :mod:`~rllib_ext.core.parameterised.torch.
hybrid_policy`'s.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

from rllib_ext.core.eval_mode import EvalModeForwards
from rllib_ext.core.parameterised.torch.hybrid_policy import HybridSigma, hybrid_action_dist_cls
from rllib_ext.core.rllib_compat import catalog_model_config


class HybridPPOCatalog(PPOCatalog):
    """PPO's catalog with the hybrid action distribution (bound to the space's layout and the
    module's options)."""

    def get_action_dist_cls(self, framework: str):
        return hybrid_action_dist_cls(self.action_space, catalog_model_config(self))


class HybridPPOTorchRLModule(EvalModeForwards, HybridSigma, DefaultPPOTorchRLModule):
    """RLlib's PPO module with the hybrid action distribution (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = HybridPPOCatalog
        super().__init__(*args, **kwargs)

    @override(DefaultPPOTorchRLModule)
    def setup(self):
        super().setup()
        self.setup_hybrid_sigma()

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self.complete_hybrid_inputs(super()._forward(batch, **kwargs))

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self.complete_hybrid_inputs(super()._forward_train(batch, **kwargs))
