"""ACE's RL module: RLlib's SAC module whose training forward pass keeps the tanh-Gaussian
log-probabilities per action dimension, so the learner can weight them (causal weights)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_learner import QF_PREDS, QF_TWIN_PREDS
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.utils.annotations import override
from ray.rllib.utils.numpy import MAX_LOG_NN_OUTPUT, MIN_LOG_NN_OUTPUT

from rllib_ext.algorithms.ace.ace_learner import LOGP_NEXT_PER_DIM, LOGP_PER_DIM


def squashed_gaussian_sample_per_dim(
    dist_inputs: torch.Tensor, *, reparameterize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples a tanh-squashed diagonal Gaussian; returns ``(action [B, A], logp [B, A])``.

    ``dist_inputs`` holds ``[mean, log_std]`` as RLlib's ``TorchSquashedGaussian`` reads them
    (log-std clamped to RLlib's ``[MIN_LOG_NN_OUTPUT, MAX_LOG_NN_OUTPUT]``). Per dimension,

        log pi_i(a_i|s) = log N(x_i; mu_i, sigma_i) - log(1 - tanh(x_i)^2),   a_i = tanh(x_i),

    with ``log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))`` (stable form, as RLlib's).
    Summing over i gives exactly RLlib's ``TorchSquashedGaussian`` log-prob; ACE weights the
    terms before the sum. Actions are in [-1, 1] (the normalised space of SAC's learner).
    """
    mean, log_std = dist_inputs.chunk(2, dim=-1)
    log_std = log_std.clamp(MIN_LOG_NN_OUTPUT, MAX_LOG_NN_OUTPUT)
    normal = torch.distributions.Normal(mean, log_std.exp(), validate_args=False)
    x = normal.rsample() if reparameterize else normal.sample()
    log_jacobian = 2.0 * (math.log(2.0) - x - torch.nn.functional.softplus(-2.0 * x))
    return torch.tanh(x), normal.log_prob(x) - log_jacobian


class DefaultACETorchRLModule(DefaultSACTorchRLModule):
    """SAC's networks (pi, twin Q, target twin Q) and inference/exploration passes unchanged;
    ``forward_train`` adds per-dimension log-probs (:data:`LOGP_PER_DIM`,
    :data:`LOGP_NEXT_PER_DIM`). Box action spaces only (ACE's causal weights are per
    continuous dimension)."""

    @override(DefaultSACTorchRLModule)
    def _forward_train(self, batch: dict) -> dict[str, Any]:
        if not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"ACE needs a Box action space, got {self.action_space}.")
        return self._forward_train_continuous(batch)

    @override(DefaultSACTorchRLModule)
    def _forward_train_continuous(self, batch: dict) -> dict[str, Any]:
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        out = {}
        # Q(s, a) of the replayed actions, for the critic losses.
        replayed = {Columns.OBS: obs, Columns.ACTIONS: batch[Columns.ACTIONS]}
        out[QF_PREDS] = self._qf_forward_train_helper(replayed, self.qf_encoder, self.qf)
        if self.twin_q:
            out[QF_TWIN_PREDS] = self._qf_forward_train_helper(
                replayed, self.qf_twin_encoder, self.qf_twin
            )

        logits = self.pi(self.pi_encoder({Columns.OBS: obs})[ENCODER_OUT])
        out[Columns.ACTION_DIST_INPUTS] = logits
        # a ~ pi(.|s) reparameterised: the policy loss differentiates through it.
        actions, out[LOGP_PER_DIM] = squashed_gaussian_sample_per_dim(logits, reparameterize=True)
        # min(Q1, Q2)(s, a) with the critics frozen, so the policy loss moves only pi
        # (the critic parameters get no gradient from it).
        critic_params = [p for net in self._critic_nets() for p in net.parameters()]
        for p in critic_params:
            p.requires_grad_(False)
        out["q_curr"] = self.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: actions})
        for p in critic_params:
            p.requires_grad_(True)

        # a' ~ pi(.|s') for the critic target: no gradient flows into pi from the target.
        with torch.no_grad():
            logits_next = self.pi(self.pi_encoder({Columns.OBS: next_obs})[ENCODER_OUT])
            actions_next, out[LOGP_NEXT_PER_DIM] = squashed_gaussian_sample_per_dim(
                logits_next, reparameterize=False
            )
            out["q_target_next"] = self.forward_target(
                {Columns.OBS: next_obs, Columns.ACTIONS: actions_next}
            )
        return out

    def _critic_nets(self) -> list[torch.nn.Module]:
        nets = [self.qf_encoder, self.qf]
        if self.twin_q:
            nets += [self.qf_twin_encoder, self.qf_twin]
        return nets
