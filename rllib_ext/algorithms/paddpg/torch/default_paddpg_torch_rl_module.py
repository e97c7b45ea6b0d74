"""PA-DDPG networks (Hausknecht & Stone 2016) and their ε-greedy exploration.

The actor maps a state to K discrete-action scores and all K actions' parameters (two heads on
one trunk; the parameter head carries the frozen passthrough layer with the initial
parameters); the action taken is ``argmax(scores)`` with its parameters. The critic maps
``cat(state, scores, params)`` to one Q-value.
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

from rllib_ext.algorithms.paddpg.paddpg_keys import ACTION_SCORES
from rllib_ext.core.parameterised.torch.networks import (
    ObservationEncoder,
    hidden_layers,
    make_passthrough,
    mlp,
    output_layer,
)
from rllib_ext.core.parameterised.torch.parameterised_torch_rl_module import (
    ParameterisedActionTorchRLModule,
)


class Actor(nn.Module):
    """State -> (scores (B, K), parameters (B, P)); tanh-bounded with ``squash``."""

    def __init__(self, encoder: ObservationEncoder, num_actions, total_params, hiddens,
                 activation, out_std, initial_params, squash: bool, initial_weights=None):
        super().__init__()
        self.encoder = encoder
        obs_dim = encoder.out_dim
        self.trunk = hidden_layers(obs_dim, hiddens, activation)
        last = hiddens[-1] if len(hiddens) else obs_dim
        self.score_head = output_layer(last, num_actions, out_std)
        self.param_head = output_layer(last, total_params, out_std)
        self.passthrough = make_passthrough(obs_dim, total_params, initial_params,
                                            initial_weights)
        self.squash = squash

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        h = self.trunk(features)
        scores, params = self.score_head(h), self.param_head(h) + self.passthrough(features)
        if self.squash:
            return torch.tanh(scores), torch.tanh(params)
        return scores, params


class Critic(nn.Module):
    """(state, scores, parameters) -> Q (B,)."""

    def __init__(self, encoder: ObservationEncoder, num_actions, total_params, hiddens,
                 activation, out_std):
        super().__init__()
        self.encoder = encoder
        self.net = mlp(encoder.out_dim + num_actions + total_params, hiddens, 1, activation,
                       out_std)

    def forward(self, obs, scores, params) -> torch.Tensor:
        features = self.encoder(obs)
        return self.net(torch.cat([features, scores, params], dim=-1)).squeeze(-1)


class DefaultPADDPGTorchRLModule(ParameterisedActionTorchRLModule):
    """Actor, critic, their targets and the exploration of PA-DDPG.

    ``model_config`` keys (filled in by ``PADDPGConfig``), besides the base module's:
    ``actor_hiddens``, ``critic_hiddens``, ``activation``, ``actor_output_init_std``,
    ``critic_output_init_std``, ``initial_params``, ``initial_param_weights``, ``squash``.
    Exploration outputs ``action_scores`` next to the actions; the env runner stores them in
    the episode's extra model outputs and the replay keeps them for the critic.
    """

    def setup_networks(self):
        cfg = self.model_config
        k, p = self.layout.num_actions, self.layout.total_params
        self.actor = Actor(self.make_encoder(), k, p, cfg["actor_hiddens"], cfg["activation"],
                           cfg["actor_output_init_std"], cfg["initial_params"], cfg["squash"],
                           cfg.get("initial_param_weights"))
        if not self.inference_only:
            self.critic = Critic(self.make_encoder(), k, p, cfg["critic_hiddens"],
                                 cfg["activation"], cfg["critic_output_init_std"])
            self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
            self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["critic", "target_actor", "target_critic"]

    def greedy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, params = self.actor(obs)
        return scores.argmax(dim=-1), params

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            scores, params = self.actor(batch[Columns.OBS])
            # The reference's exploration: on an ε step every score is drawn from U(0, 1)
            # (so the action is uniform), then argmax; parameter noise as configured.
            explore = self.exploring_rows(scores.shape[0])
            scores = torch.where(explore.unsqueeze(-1), torch.rand_like(scores), scores)
            k = scores.argmax(dim=-1)
            params = self.perturb_parameters(params, k, explore)
        return {Columns.ACTIONS: self.layout.to_env(k, params), ACTION_SCORES: scores}
