"""ACE's RL module: RLlib's SAC module whose training forward pass keeps the tanh-Gaussian
log-probabilities per action dimension, so the learner can weight them (causal weights), with
the reference's log-std clamp and its uniform-random warm-up actions."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.algorithms.sac.sac_learner import QF_PREDS, QF_TWIN_PREDS
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian
from ray.rllib.core.models.base import ENCODER_OUT, Encoder
from ray.rllib.core.models.configs import MLPEncoderConfig
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.ace.ace_keys import (
    LOGP_NEXT_PER_DIM,
    LOGP_PER_DIM,
    Q_CURR,
    Q_TARGET_NEXT,
)
from rllib_ext.core.eval_mode import EvalModeForwards
from rllib_ext.core.rllib_compat import catalog_model_config

#: ``model_config`` key (set from ``ACEConfig.q_network``) choosing the critics' encoder.
Q_NETWORK_KEY = "ace_q_network"
#: ``q_network`` values: "concat" = an MLP on the concatenated (s, a), as the reference and
#: the SAC paper; "multi_stream" = RLlib 2.60 SAC's encoder (separate obs and action MLPs plus
#: fusion layers: the same results interface, several times the compute).
Q_NETWORKS = ("concat", "multi_stream")
#: ``model_config`` key (from ``ACEConfig.log_std_bounds``): the (low, high) clamp of log-std.
LOG_STD_BOUNDS_KEY = "ace_log_std_bounds"
#: ``model_config`` key (from ``ACEConfig.random_warmup_steps``): env steps of uniform-random
#: exploration actions.
RANDOM_WARMUP_KEY = "ace_random_warmup_steps"
#: RLlib's SAC clamp, used when the model config does not set one.
RLLIB_LOG_STD_BOUNDS = (-5.0, 2.0)


class ACECatalog(SACCatalog):
    """SAC's catalog whose continuous critics are, by default, MLPs on concat(s, a):
    ``fcnet_hiddens`` with ``fcnet_activation`` (and its initialisers), then SAC's Q head."""

    def _build_qf_encoder_continuous(self, framework: str) -> Encoder:
        config = catalog_model_config(self)
        if config.get(Q_NETWORK_KEY, "concat") == "multi_stream":
            return super()._build_qf_encoder_continuous(framework)
        inputs = int(self.observation_space.shape[0]) + int(self.action_space.shape[0])
        self.qf_encoder_config = MLPEncoderConfig(
            input_dims=[inputs],
            hidden_layer_dims=config["fcnet_hiddens"][:-1],
            hidden_layer_activation=config["fcnet_activation"],
            hidden_layer_weights_initializer=config["fcnet_kernel_initializer"],
            hidden_layer_weights_initializer_config=config["fcnet_kernel_initializer_kwargs"],
            hidden_layer_bias_initializer=config["fcnet_bias_initializer"],
            hidden_layer_bias_initializer_config=config["fcnet_bias_initializer_kwargs"],
            output_layer_dim=self.latent_dims[0],
            output_layer_activation=config["fcnet_activation"],
            output_layer_weights_initializer=config["fcnet_kernel_initializer"],
            output_layer_weights_initializer_config=config["fcnet_kernel_initializer_kwargs"],
            output_layer_bias_initializer=config["fcnet_bias_initializer"],
            output_layer_bias_initializer_config=config["fcnet_bias_initializer_kwargs"],
        )
        return self.qf_encoder_config.build(framework=framework)


def squashed_gaussian_sample_per_dim(
    dist_inputs: torch.Tensor, *, reparameterize: bool,
    log_std_bounds: tuple[float, float] = RLLIB_LOG_STD_BOUNDS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples a tanh-squashed diagonal Gaussian; returns ``(action [B, A], logp [B, A])``.

    ``dist_inputs`` holds ``[mean, log_std]`` as RLlib's ``TorchSquashedGaussian`` reads them,
    log-std clamped to ``log_std_bounds`` (RLlib's ``(-5, 2)`` unless given; the reference's
    is ``(-20, 2)``). Per dimension,

        log pi_i(a_i|s) = log N(x_i; mu_i, sigma_i) - log(1 - tanh(x_i)^2),   a_i = tanh(x_i),

    with ``log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))`` (stable form, as RLlib's).
    Summing over i gives exactly RLlib's ``TorchSquashedGaussian`` log-prob; ACE weights the
    terms before the sum. Actions are in [-1, 1] (the normalised space of SAC's learner).
    """
    mean, log_std = dist_inputs.chunk(2, dim=-1)
    log_std = log_std.clamp(*log_std_bounds)
    normal = torch.distributions.Normal(mean, log_std.exp(), validate_args=False)
    x = normal.rsample() if reparameterize else normal.sample()
    log_jacobian = 2.0 * (math.log(2.0) - x - torch.nn.functional.softplus(-2.0 * x))
    return torch.tanh(x), normal.log_prob(x) - log_jacobian


class BoundedSquashedGaussian(TorchSquashedGaussian):
    """RLlib's ``TorchSquashedGaussian`` with the log-std clamped to :attr:`LOG_STD_BOUNDS`
    instead of RLlib's (-5, 2); :meth:`with_bounds` gives the subclass for other bounds."""

    LOG_STD_BOUNDS: tuple[float, float] = RLLIB_LOG_STD_BOUNDS
    _subclasses: dict[tuple[float, float], type] = {}

    @classmethod
    def with_bounds(cls, bounds: tuple[float, float]) -> type[BoundedSquashedGaussian]:
        bounds = (float(bounds[0]), float(bounds[1]))
        if bounds not in cls._subclasses:
            cls._subclasses[bounds] = type(f"BoundedSquashedGaussian{bounds}", (cls,),
                                           {"LOG_STD_BOUNDS": bounds})
        return cls._subclasses[bounds]

    @classmethod
    @override(TorchSquashedGaussian)
    def from_logits(cls, logits, low: float = -1.0, high: float = 1.0, **kwargs):
        loc, log_std = logits.chunk(2, dim=-1)
        return cls(loc=loc, scale=log_std.clamp(*cls.LOG_STD_BOUNDS).exp(), low=low, high=high)


class DefaultACETorchRLModule(EvalModeForwards, DefaultSACTorchRLModule):
    """SAC's networks (pi, twin Q, target twin Q; the critics as :class:`ACECatalog` builds
    them) and inference/exploration passes unchanged; ``forward_train`` adds per-dimension
    log-probs (:data:`LOGP_PER_DIM`, :data:`LOGP_NEXT_PER_DIM`) and is split into
    :meth:`forward_policy` and :meth:`forward_critics`, so the learner skips the policy pass on
    critic-only steps. Box action spaces only (ACE's causal weights are per continuous
    dimension).

    From the model config (set by ``ACEConfig``): the log-std clamp
    (:data:`LOG_STD_BOUNDS_KEY`, in the training passes and the exploration distribution) and
    the random warm-up (:data:`RANDOM_WARMUP_KEY`: while the env runner's global env-step
    count ``t`` is below it, exploration actions are uniform on [-1, 1] per dimension, the
    normalised action space, which RLlib's connectors then map to the env's bounds)."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = ACECatalog
        super().__init__(*args, **kwargs)

    @override(DefaultSACTorchRLModule)
    def _qf_forward_train_helper(self, batch, encoder, head, squeeze: bool = True):
        """Q(s, a); with the "concat" critics the encoder reads the concatenated (s, a)."""
        if self.model_config.get(Q_NETWORK_KEY, "concat") == "multi_stream":
            return super()._qf_forward_train_helper(batch, encoder, head, squeeze=squeeze)
        inputs = torch.cat([batch[Columns.OBS], batch[Columns.ACTIONS]], dim=-1)
        out = head(encoder({Columns.OBS: inputs})[ENCODER_OUT])
        return out.squeeze(-1) if squeeze else out

    @property
    def log_std_bounds(self) -> tuple[float, float]:
        return tuple(self.model_config.get(LOG_STD_BOUNDS_KEY, RLLIB_LOG_STD_BOUNDS))

    @override(DefaultSACTorchRLModule)
    def get_exploration_action_dist_cls(self):
        return BoundedSquashedGaussian.with_bounds(self.log_std_bounds)

    @override(DefaultSACTorchRLModule)
    def _forward_exploration(self, batch: dict, **kwargs) -> dict[str, Any]:
        # ``t``: the env runner's estimate of the global env steps sampled so far.
        out = super()._forward_exploration(batch, **kwargs)
        t = kwargs.get("t")
        if t is not None and t < self.model_config.get(RANDOM_WARMUP_KEY, 0):
            # Uniform random actions (the reference's start_steps). Setting ACTIONS makes
            # RLlib's GetActions connector skip sampling; the log-density of the uniform
            # (-A log 2) is given too, so every step of an episode carries the same outputs.
            logits = out[Columns.ACTION_DIST_INPUTS]
            shape = (logits.shape[0], *self.action_space.shape)
            out[Columns.ACTIONS] = torch.rand(shape, device=logits.device) * 2.0 - 1.0
            out[Columns.ACTION_LOGP] = torch.full(
                (logits.shape[0],), -shape[1] * math.log(2.0), device=logits.device)
        return out

    @override(DefaultSACTorchRLModule)
    def _forward_train(self, batch: dict) -> dict[str, Any]:
        if not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"ACE needs a Box action space, got {self.action_space}.")
        return self._forward_train_continuous(batch)

    @override(DefaultSACTorchRLModule)
    def _forward_train_continuous(self, batch: dict) -> dict[str, Any]:
        # The policy pass first (a ~ pi(.|s)), then the critics' (a' ~ pi(.|s')): RLlib's SAC
        # order of random draws.
        out = self.forward_policy(batch)
        out.update(self.forward_critics(batch))
        return out

    def observations(self, obs: torch.Tensor) -> torch.Tensor:
        """Replayed observations (flat rows) in the shape the encoders read: images back to
        ``(B, H, W, C)``; vector observations unchanged."""
        shape = self.observation_space.shape
        return obs if len(shape) == 1 else obs.reshape(obs.shape[0], *shape)

    def forward_policy(self, batch: dict) -> dict[str, Any]:
        """What the policy and alpha losses need: a ~ pi(.|s) reparameterised, its
        per-dimension log-probs (:data:`LOGP_PER_DIM`) and ``min_j Q_j(s, a)``
        (:data:`Q_CURR`) with the critics frozen, so the policy loss moves only pi."""
        obs = self.observations(batch[Columns.OBS])
        logits = self.pi(self.pi_encoder({Columns.OBS: obs})[ENCODER_OUT])
        out = {Columns.ACTION_DIST_INPUTS: logits}
        actions, out[LOGP_PER_DIM] = squashed_gaussian_sample_per_dim(
            logits, reparameterize=True, log_std_bounds=self.log_std_bounds)
        critic_params = [p for net in self._critic_nets() for p in net.parameters()]
        for p in critic_params:
            p.requires_grad_(False)
        out[Q_CURR] = self.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: actions})
        for p in critic_params:
            p.requires_grad_(True)
        return out

    def forward_critics(self, batch: dict) -> dict[str, Any]:
        """What the critic losses need: Q_j(s, a) of the replayed actions (:data:`QF_PREDS`,
        :data:`QF_TWIN_PREDS`), and for the target a' ~ pi(.|s') with its per-dimension
        log-probs (:data:`LOGP_NEXT_PER_DIM`) and ``min_j Q'_j(s', a')``
        (:data:`Q_TARGET_NEXT`), all without gradient into pi or the target critics."""
        obs = self.observations(batch[Columns.OBS])
        next_obs = self.observations(batch[Columns.NEXT_OBS])
        replayed = {Columns.OBS: obs, Columns.ACTIONS: batch[Columns.ACTIONS]}
        out = {QF_PREDS: self._qf_forward_train_helper(replayed, self.qf_encoder, self.qf)}
        if self.twin_q:
            out[QF_TWIN_PREDS] = self._qf_forward_train_helper(
                replayed, self.qf_twin_encoder, self.qf_twin
            )
        with torch.no_grad():
            logits_next = self.pi(self.pi_encoder({Columns.OBS: next_obs})[ENCODER_OUT])
            actions_next, out[LOGP_NEXT_PER_DIM] = squashed_gaussian_sample_per_dim(
                logits_next, reparameterize=False, log_std_bounds=self.log_std_bounds)
            out[Q_TARGET_NEXT] = self.forward_target(
                {Columns.OBS: next_obs, Columns.ACTIONS: actions_next}
            )
        return out

    def _critic_nets(self) -> list[torch.nn.Module]:
        nets = [self.qf_encoder, self.qf]
        if self.twin_q:
            nets += [self.qf_twin_encoder, self.qf_twin]
        return nets
