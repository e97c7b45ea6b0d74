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
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_ext.algorithms.pdqn.action_layout import layout_from_space
from rllib_ext.algorithms.pdqn.pdqn_learner import EPSILON_BUFFER

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "tanh": nn.Tanh}


def mlp(in_dim: int, hiddens, out_dim: int, activation: str, out_std: float | None) -> nn.Module:
    """Hidden layers with Kaiming-normal weights and zero biases (the reference's init); the
    output layer is N(0, out_std) if given, else PyTorch's default; zero output bias."""
    layers, last = [], in_dim
    for width in hiddens:
        linear = nn.Linear(last, width)
        nn.init.kaiming_normal_(
            linear.weight, nonlinearity="leaky_relu" if activation == "leaky_relu" else "relu"
        )
        nn.init.zeros_(linear.bias)
        layers += [linear, ACTIVATIONS[activation]()]
        last = width
    out = nn.Linear(last, out_dim)
    if out_std is not None:
        nn.init.normal_(out.weight, std=out_std)
    nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


class ParamNet(nn.Module):
    """State -> all action parameters: an MLP plus a frozen linear "passthrough" that carries
    user-given initial parameters (reference: weights 0, bias = initial parameters)."""

    def __init__(self, obs_dim, total_params, hiddens, activation, out_std, initial_params,
                 squash: bool):
        super().__init__()
        self.body = mlp(obs_dim, hiddens, total_params, activation, out_std)
        if out_std is None:  # reference default for the parameter head: zeros
            nn.init.zeros_(self.body[-1].weight)
        self.passthrough = nn.Linear(obs_dim, total_params)
        nn.init.zeros_(self.passthrough.weight)
        with torch.no_grad():
            self.passthrough.bias.copy_(
                torch.as_tensor(initial_params, dtype=torch.float32)
                if initial_params is not None else torch.zeros(total_params)
            )
        self.passthrough.requires_grad_(False)
        self.squash = squash

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.body(obs) + self.passthrough(obs)
        return torch.tanh(x) if self.squash else x


class QNet(nn.Module):
    """(state, all parameters) -> (B, K) Q-values, wired per variant."""

    def __init__(self, variant, obs_dim, layout, hiddens, activation, out_std):
        super().__init__()
        self.variant = variant
        self.layout = layout
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


class DefaultPDQNTorchRLModule(TorchRLModule, InferenceOnlyAPI):
    """Networks, targets and exploration of the P-DQN family.

    ``model_config`` keys (filled in by ``PDQNConfig``): ``variant``, ``q_hiddens``,
    ``param_hiddens``, ``activation``, ``q_output_init_std``, ``param_output_init_std``,
    ``initial_params``, ``squash``, ``param_layout``, ``noise`` ("ou" | "gaussian" | "uniform"
    | "none"), ``ou_theta``, ``ou_sigma``, ``gaussian_sigma``, ``epsilon_initial``.
    Actions are returned directly (``Columns.ACTIONS``) in the env's action structure, in
    RLlib's normalised [-1, 1] parameter range.
    """

    @override(RLModule)
    def setup(self):
        cfg = self.model_config
        self.layout = layout_from_space(self.action_space, cfg.get("param_layout"))
        obs_dim = int(self.observation_space.shape[0])
        self.param_net = ParamNet(
            obs_dim, self.layout.total_params, cfg["param_hiddens"], cfg["activation"],
            cfg["param_output_init_std"], cfg["initial_params"], cfg["squash"],
        )
        self.q_net = QNet(cfg["variant"], obs_dim, self.layout, cfg["q_hiddens"],
                          cfg["activation"], cfg["q_output_init_std"])
        # Exploration rate; set by the learner from the schedule and synced with the weights.
        self.register_buffer(EPSILON_BUFFER, torch.tensor(float(cfg["epsilon_initial"])))
        if not self.inference_only:
            self.target_param_net = copy.deepcopy(self.param_net).requires_grad_(False)
            self.target_q_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self._ou_state: torch.Tensor | None = None  # per-env OU noise, env runners only

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["target_param_net", "target_q_net"]

    def greedy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.param_net(obs)
        return self.q_net(obs, params).argmax(dim=-1), params

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            k, params = self.greedy(batch[Columns.OBS])
        return {Columns.ACTIONS: self.layout.to_env(k, params)}

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        cfg = self.model_config
        with torch.no_grad():
            k, params = self.greedy(batch[Columns.OBS])
            batch_size = k.shape[0]
            explore = torch.rand(batch_size) < self.epsilon
            k = torch.where(explore, torch.randint(self.layout.num_actions, (batch_size,)), k)
            noise = cfg["noise"]
            if noise == "uniform":
                # Reference without OU noise: exploratory steps also draw every parameter
                # uniformly in the (normalised) bounds.
                uniform = torch.empty_like(params).uniform_(-1.0, 1.0)
                params = torch.where(explore.unsqueeze(-1), uniform, params)
            elif noise in ("ou", "gaussian"):
                # Noise on the chosen action's parameters only (reference), random or greedy.
                chosen = self.q_net.owner_mask[k]
                params = params + chosen * self._noise(noise, params)
        return {Columns.ACTIONS: self.layout.to_env(k, params)}

    def _noise(self, kind: str, params: torch.Tensor) -> torch.Tensor:
        cfg = self.model_config
        if kind == "gaussian":
            return cfg["gaussian_sigma"] * torch.randn_like(params)
        # Ornstein-Uhlenbeck, one process per env row: dx = theta (0 - x) + sigma N(0, 1).
        if self._ou_state is None or self._ou_state.shape != params.shape:
            self._ou_state = torch.zeros_like(params)
        self._ou_state = (self._ou_state - cfg["ou_theta"] * self._ou_state
                          + cfg["ou_sigma"] * torch.randn_like(params))
        return self._ou_state

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # The learner calls the networks itself (several forward passes per loss).
        return {}
