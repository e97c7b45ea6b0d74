"""Framework-agnostic default RLModule for PG: encoder -> policy head -> action-dist inputs,
and, for the learned state-value baseline, a separate value network."""

from __future__ import annotations

from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

#: ``model_config`` key (set by ``PGConfig`` from ``baseline="value"``): build the value network.
VALUE_NETWORK_KEY = "value_baseline"


class DefaultPGRLModule(RLModule, InferenceOnlyAPI, ValueFunctionAPI):
    """Policy module; with ``model_config["value_baseline"]`` also a value network
    (``value_encoder`` -> ``vf``: the same layer sizes as the policy's, no shared weights), built
    on learners only (the env runners' inference-only copies have no use for it).

    Any RLModule that returns ``Columns.ACTION_DIST_INPUTS`` from ``forward_train`` and whose
    ``get_train_action_dist_cls()`` gives a distribution with ``logp`` and ``entropy`` can be
    trained by PG instead of this one (for ``baseline="value"`` it must also implement
    ``ValueFunctionAPI.compute_values``).
    """

    @override(RLModule)
    def setup(self):
        self.encoder = self.catalog.build_encoder(framework=self.framework)
        self.pi = self.catalog.build_pi_head(framework=self.framework)
        if self.model_config.get(VALUE_NETWORK_KEY) and not self.inference_only:
            self.value_encoder = self.catalog.build_encoder(framework=self.framework)
            self.vf = self.catalog.build_vf_head(framework=self.framework)

    @override(RLModule)
    def get_initial_state(self) -> dict:
        """The recurrent encoder's zero state (``model_config["use_lstm"]``), else {}."""
        if hasattr(self.encoder, "get_initial_state"):
            return self.encoder.get_initial_state()
        return {}

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["value_encoder", "vf"] if self.model_config.get(VALUE_NETWORK_KEY) else []
