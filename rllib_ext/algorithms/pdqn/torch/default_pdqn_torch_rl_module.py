"""P-DQN / MP-DQN / SP-DQN networks and their epsilon-greedy, parameter-noise exploration.

``param_net`` (the "action-parameter actor") maps a state to all K actions' parameters x;
``q_net`` (the "Q actor") maps (state, x) to K Q-values. How x reaches the Q-network is the
variant (Bester et al. 2019, Sec. 3):

- ``"pdqn"`` (Xiong et al. 2018): one pass over ``cat(s, x_1..x_K)``; Q_k sees every x_j;
- ``"mpdqn"``: K passes, pass a sees only x_a (other slots 0), Q_a is read off pass a;
- ``"spdqn"``: K separate networks, network k sees ``cat(s, x_k)``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_ext.core.parameterised.torch.networks import (
    ObservationEncoder,
    make_passthrough,
    mlp,
)
from rllib_ext.core.parameterised.torch.parameterised_torch_rl_module import (
    ParameterisedActionTorchRLModule,
)


class ParamNet(nn.Module):
    """State -> all action parameters: its encoder (the identity for vector observations), an
    MLP plus the frozen passthrough layer carrying the user-given initial parameters;
    tanh-bounded with ``squash``."""

    def __init__(self, encoder: ObservationEncoder, total_params, hiddens, activation, out_std,
                 initial_params, squash: bool, initial_weights=None):
        super().__init__()
        self.encoder = encoder
        # Reference default for the parameter head without an init std: zero weights.
        self.body = mlp(encoder.out_dim, hiddens, total_params, activation, out_std,
                        zero_default=True)
        self.passthrough = make_passthrough(encoder.out_dim, total_params, initial_params,
                                            initial_weights)
        self.squash = squash

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(obs)
        x = self.body(features) + self.passthrough(features)
        return torch.tanh(x) if self.squash else x


class QNet(nn.Module):
    """(state, all parameters) -> (B, K) Q-values, wired per variant on the features of its
    encoder (the identity for vector observations; an image is encoded once, not per pass)."""

    def __init__(self, variant, encoder: ObservationEncoder, layout, hiddens, activation,
                 out_std):
        super().__init__()
        self.variant = variant
        self.layout = layout
        self.encoder = encoder
        obs_dim = encoder.out_dim
        k, p = layout.num_actions, layout.total_params
        if variant == "spdqn":
            self.nets = nn.ModuleList(
                mlp(obs_dim + dim, hiddens, 1, activation, out_std) for dim in layout.param_dims
            )
        else:
            self.net = mlp(obs_dim + p, hiddens, k, activation, out_std)
        # Row a: 1 on action a's parameter slots (multi-pass masking, zero-index gradients).
        self.register_buffer("owner_mask", layout.owner_mask(), persistent=False)

    def forward(self, obs: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        obs = self.encoder(obs)
        if self.variant == "pdqn":
            return self.net(torch.cat([obs, params], dim=-1))
        if self.variant == "spdqn":
            parts = self.layout.split(params)
            return torch.cat(
                [net(torch.cat([obs, x], dim=-1)) for net, x in zip(self.nets, parts,
                                                                     strict=True)],
                dim=-1,
            )
        # Multi-pass: K copies of the batch, copy a keeps only x_a (other slots 0), one
        # batched forward, then Q[b, a] = Q_all[a, b, a] (the diagonal over passes/outputs).
        k, batch = self.layout.num_actions, obs.shape[0]
        masked = params.unsqueeze(0) * self.owner_mask.unsqueeze(1)  # (K, B, P)
        inputs = torch.cat([obs.unsqueeze(0).expand(k, -1, -1), masked], dim=-1)
        q_all = self.net(inputs.reshape(k * batch, -1)).view(k, batch, k)
        return q_all.diagonal(dim1=0, dim2=2)  # (B, K)


class DefaultPDQNTorchRLModule(ParameterisedActionTorchRLModule):
    """Networks, targets and exploration of the P-DQN family.

    ``model_config`` keys (filled in by ``PDQNConfig``), besides the base module's:
    ``variant``, ``q_hiddens``, ``param_hiddens``, ``activation``, ``q_output_init_std``,
    ``param_output_init_std``, ``initial_params``, ``initial_param_weights``, ``squash``.
    """

    def setup_networks(self):
        cfg = self.model_config
        self.param_net = ParamNet(
            self.make_encoder(), self.layout.total_params, cfg["param_hiddens"], cfg["activation"],
            cfg["param_output_init_std"], cfg["initial_params"], cfg["squash"],
            cfg.get("initial_param_weights"),
        )
        self.q_net = QNet(cfg["variant"], self.make_encoder(), self.layout, cfg["q_hiddens"],
                          cfg["activation"], cfg["q_output_init_std"])
        if not self.inference_only:
            self.target_param_net = copy.deepcopy(self.param_net).requires_grad_(False)
            self.target_q_net = copy.deepcopy(self.q_net).requires_grad_(False)

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["target_param_net", "target_q_net"]

    def greedy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.param_net(obs)
        return self.q_net(obs, params).argmax(dim=-1), params

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            k, params = self.greedy(batch[Columns.OBS])
            # epsilon-greedy over the discrete actions, then parameter noise.
            explore = self.exploring_rows(k.shape[0])
            random_k = torch.randint(self.layout.num_actions, k.shape, device=k.device)
            k = torch.where(explore, random_k, k)
            params = self.perturb_parameters(params, k, explore)
        return {Columns.ACTIONS: self.layout.to_env(k, params)}
