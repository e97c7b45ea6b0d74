"""Framework-agnostic default RLModule for PG: encoder -> policy head -> action-dist inputs."""

from __future__ import annotations

from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override


class DefaultPGRLModule(RLModule):
    """Policy-only module (no value function, no target networks).

    Any RLModule that returns ``Columns.ACTION_DIST_INPUTS`` from ``forward_train`` and whose
    ``get_train_action_dist_cls()`` gives a distribution with ``logp`` and ``entropy`` can be
    trained by PG instead of this one.
    """

    @override(RLModule)
    def setup(self):
        self.encoder = self.catalog.build_encoder(framework=self.framework)
        self.pi = self.catalog.build_pi_head(framework=self.framework)
