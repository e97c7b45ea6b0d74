"""Torch default RLModule for PG."""

from __future__ import annotations

from typing import Any

from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.pg.default_pg_rl_module import DefaultPGRLModule
from rllib_ext.algorithms.pg.pg_catalog import PGCatalog


class DefaultPGTorchRLModule(TorchRLModule, DefaultPGRLModule):
    def __init__(self, *args, **kwargs):
        kwargs["catalog_class"] = kwargs.get("catalog_class") or PGCatalog
        super().__init__(*args, **kwargs)

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Same pass for inference, exploration and training: RLlib's GetActions connector samples
        # (explore) or takes the mode (inference) of the distribution built from these inputs.
        embeddings = self.encoder(batch)[ENCODER_OUT]
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings)}
