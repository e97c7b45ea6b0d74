"""Base RL module of the parameterised-action algorithms: action layout, ε buffer, exploration
noise on the action parameters, greedy inference. Subclasses build the networks."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.annotations import override

from rllib_ext.core.eval_mode import EvalModeForwards
from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.parameterised_learner import EPSILON_BUFFER
from rllib_ext.core.parameterised.torch.networks import ObservationEncoder


class ParameterisedActionTorchRLModule(EvalModeForwards, TorchRLModule, InferenceOnlyAPI):
    """Common parts; ``model_config`` keys read here: ``param_layout``, ``epsilon_initial``,
    ``noise`` ("ou" | "gaussian" | "uniform" | "none"), ``ou_theta``, ``ou_sigma``,
    ``gaussian_sigma``.

    Subclasses implement :meth:`setup_networks`, :meth:`greedy` and, for extra per-step outputs
    or a different exploration, ``_forward_exploration``. Actions are returned directly
    (``Columns.ACTIONS``) in the env's action structure, parameters in RLlib's normalised
    [-1, 1] range.
    """

    @override(RLModule)
    def setup(self):
        self.layout = layout_from_space(self.action_space, self.model_config.get("param_layout"))
        # Row a: 1 on action a's parameter slots (noise on the chosen action, masking).
        self.register_buffer("owner_mask", self.layout.owner_mask(), persistent=False)
        # Exploration rate; set by the learner from the schedule and synced with the weights.
        self.register_buffer(EPSILON_BUFFER,
                             torch.tensor(float(self.model_config["epsilon_initial"])))
        self._ou_state: torch.Tensor | None = None  # per-env OU noise, env runners only
        self.setup_networks()

    def setup_networks(self) -> None:
        """Builds the networks (and, unless ``self.inference_only``, their targets)."""
        raise NotImplementedError

    def make_encoder(self) -> ObservationEncoder:
        """A new observation encoder for one network: the identity for vector observations,
        RLlib's catalog CNN (from ``model_config``) for images. Each network gets its own, so
        each is trained by its own loss (as RLlib's SAC gives pi and Q separate encoders)."""
        return ObservationEncoder(self.observation_space, self.action_space, self.model_config)

    def greedy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(discrete action (B,), all parameters (B, P)) of the greedy policy."""
        raise NotImplementedError

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            k, params = self.greedy(batch[Columns.OBS])
        return {Columns.ACTIONS: self.layout.to_env(k, params)}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # The learners call the networks themselves (several forward passes per loss).
        return {}

    def exploring_rows(self, batch_size: int) -> torch.Tensor:
        """(B,) bool: rows that take an exploratory (ε) step."""
        return torch.rand(batch_size, device=self.epsilon.device) < self.epsilon

    def perturb_parameters(self, params: torch.Tensor, k: torch.Tensor,
                           explore: torch.Tensor) -> torch.Tensor:
        """Parameter exploration (``model_config["noise"]``), as the reference:

        - "uniform": exploratory rows draw *every* parameter uniformly in [-1, 1];
        - "ou" / "gaussian": noise on the chosen action's parameters only, random or greedy step;
        - "none": unchanged.
        """
        cfg = self.model_config
        noise = cfg["noise"]
        if noise == "uniform":
            uniform = torch.empty_like(params).uniform_(-1.0, 1.0)
            return torch.where(explore.unsqueeze(-1), uniform, params)
        if noise == "gaussian":
            return params + self.owner_mask[k] * cfg["gaussian_sigma"] * torch.randn_like(params)
        if noise == "ou":
            # Ornstein-Uhlenbeck, one process per env row: x <- x + theta (0 - x) + sigma N(0, 1).
            if self._ou_state is None or self._ou_state.shape != params.shape:
                self._ou_state = torch.zeros_like(params)
            self._ou_state = (self._ou_state - cfg["ou_theta"] * self._ou_state
                              + cfg["ou_sigma"] * torch.randn_like(params))
            return params + self.owner_mask[k] * self._ou_state
        return params
