"""Torch default RLModule for PG."""

from __future__ import annotations

from typing import Any

from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.pg.default_pg_rl_module import DefaultPGRLModule
from rllib_ext.algorithms.pg.pg_catalog import PGCatalog
from rllib_ext.core.eval_mode import EvalModeForwards
from rllib_ext.core.parameterised.torch.hybrid_policy import HybridSigma, is_hybrid_space


class DefaultPGTorchRLModule(EvalModeForwards, HybridSigma, TorchRLModule, DefaultPGRLModule):
    """PG's policy (and value) module; for a parameterised action space its pi head feeds the
    hybrid distribution, with the parameters' sigma of ``model_config["hybrid_sigma"]``."""

    def __init__(self, *args, **kwargs):
        kwargs["catalog_class"] = kwargs.get("catalog_class") or PGCatalog
        super().__init__(*args, **kwargs)

    @override(DefaultPGRLModule)
    def setup(self):
        super().setup()
        self.hybrid = is_hybrid_space(self.action_space)
        if self.hybrid:
            self.setup_hybrid_sigma()

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Same pass for inference, exploration and training: RLlib's GetActions connector samples
        # (explore) or takes the mode (inference) of the distribution built from these inputs.
        # With an LSTM encoder the batch is [B, T, ...] with Columns.STATE_IN, and the new
        # state goes back to the env runner (sampling) or is ignored (training).
        encoder_outs = self.encoder(batch)
        out = {Columns.ACTION_DIST_INPUTS: self.pi(encoder_outs[ENCODER_OUT])}
        if Columns.STATE_OUT in encoder_outs:
            out[Columns.STATE_OUT] = encoder_outs[Columns.STATE_OUT]
        return self.complete_hybrid_inputs(out) if self.hybrid else out

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None):
        """V(s) in the batch's normalised return units (see ``advantages.normalization_stats``),
        from the value network's own encoder (``embeddings`` are ignored: no shared layers)."""
        return self.vf(self.value_encoder(batch)[ENCODER_OUT]).squeeze(-1)
