"""The hybrid action distribution of on-policy methods for parameterised action spaces:
a Categorical over the K discrete actions times a diagonal Gaussian over the parameters.

    pi(k, x | s) = Cat(k; softmax(l(s))) * prod_{d in D(k)} N(x_d; mu_d(s), sigma_d(s))

``D(k)`` is what :data:`LOGP_MODES` selects:

- ``"chosen"`` (Fan et al. 2019, H-PPO): only the chosen action's parameter slots (the layout's
  owner mask row k). The parameters of actions not taken do not reach the env, so they are not
  part of the action's likelihood.
- ``"all"`` (DI-engine's H-PPO and RLlib's joint Tuple distribution): every parameter slot.

How the parameters stay inside [-1, 1] (RLlib's normalised action range) is :data:`BOUNDS`:

- ``"tanh_mean"`` (DI-engine's ``bound_type='tanh'``): the mean is ``tanh(mu)``, the sample an
  unbounded Gaussian around it; RLlib's module-to-env connector clips what reaches the env
  (``unsquash_action``), the episode keeps the unclipped sample, so ``logp`` is exact.
- ``"squashed"``: ``x = tanh(u)``, ``u ~ N(mu, sigma)``: samples never leave (-1, 1), with the
  change-of-variables term ``log p(x) = log N(u) - sum log(1 - tanh(u)^2)``, no mass piles on
  the bounds. Its entropy has no closed form: :meth:`entropy` reports the pre-squash
  Gaussian's (RLlib's SAC uses a sampled estimate instead; an entropy bonus on the pre-squash
  Gaussian still keeps sigma from collapsing).

Inputs (``ACTION_DIST_INPUTS``), per row: ``[K logits | P means | P log-stds]``; a module
with a fixed or state-independent sigma writes its log-stds into these columns.
Actions travel in the env's structure (:meth:`~rllib_ext.core.parameterised.action_layout.
ActionLayout.to_env`): nested, flat-tuple or flat-Box.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import torch
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.utils.annotations import override

from rllib_ext.core.parameterised.action_layout import ActionLayout, layout_from_space

#: Which parameter slots are part of the action's likelihood (module docstring).
LOGP_MODES = ("chosen", "all")
#: How the parameters are kept inside [-1, 1] (module docstring).
BOUNDS = ("tanh_mean", "squashed")
#: atanh is evaluated at most this close to +-1 (float32 tanh saturates there).
SQUASH_EPS = 1e-6


@functools.lru_cache(maxsize=64)
def _owner_mask(layout: ActionLayout, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``layout.owner_mask()`` on ``device`` in ``dtype``, built once per combination: a
    distribution is built at every env step and every minibatch, and building the mask took
    about a third of that. Shared between distributions, which only read it."""
    return layout.owner_mask().to(device, dtype)


def _log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|."""
    return 2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))


class TorchHybridDistribution(Distribution):
    """Categorical(K) x diagonal Gaussian(P) over a parameterised action (module docstring).

    Args:
        logits: (B, K) discrete logits.
        mean: (B, P) Gaussian means (pre-tanh for both bounds).
        log_std: (B, P) Gaussian log standard deviations.
        layout: The action space's :class:`ActionLayout`.
        logp_mode: :data:`LOGP_MODES`.
        bound: :data:`BOUNDS`.
    """

    def __init__(self, logits: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, *,
                 layout: ActionLayout, logp_mode: str = "chosen", bound: str = "tanh_mean"):
        super().__init__()
        if logp_mode not in LOGP_MODES or bound not in BOUNDS:
            raise ValueError(f"logp_mode must be one of {LOGP_MODES} and bound one of {BOUNDS}; "
                             f"got {logp_mode!r}, {bound!r}.")
        self.layout, self.logp_mode, self.bound = layout, logp_mode, bound
        self.categorical = torch.distributions.Categorical(logits=logits, validate_args=False)
        loc = torch.tanh(mean) if bound == "tanh_mean" else mean
        self.normal = torch.distributions.Normal(loc, log_std.exp(), validate_args=False)
        self.owner = _owner_mask(layout, logits.device, logits.dtype)  # (K, P), read-only

    # -- the two parts ---------------------------------------------------------------------------
    def _slots(self, k: torch.Tensor) -> torch.Tensor:
        """(B, P) 0/1: the parameter slots in the likelihood of discrete action ``k``."""
        if self.logp_mode == "all":
            return torch.ones_like(self.normal.loc)
        return self.owner[k]

    def logp_parts(self, action) -> tuple[torch.Tensor, torch.Tensor]:
        """(log Cat(k), sum_{d in D(k)} log p(x_d)), each (B,): the two factors H-PPO's two
        ratios use."""
        k, x = self.layout.from_env(action)
        loc = self.normal.loc
        k, x = k.to(loc.device), x.to(loc.device, loc.dtype)
        if self.bound == "squashed":
            # x = tanh(u): log p(x) = log N(u) - log(1 - tanh(u)^2), u = atanh(x).
            u = torch.atanh(x.clamp(-1.0 + SQUASH_EPS, 1.0 - SQUASH_EPS))
            per_dim = self.normal.log_prob(u) - _log_one_minus_tanh_sq(u)
        else:
            per_dim = self.normal.log_prob(x)
        return self.categorical.log_prob(k), (per_dim * self._slots(k)).sum(-1)

    @override(Distribution)
    def logp(self, value, **kwargs) -> torch.Tensor:
        logp_k, logp_x = self.logp_parts(value)
        return logp_k + logp_x

    def entropy_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(H(k), E_k[H(x | k)]), each (B,). For "chosen" the parameter entropy is that of the
        chosen action's slots, averaged over k ~ Cat; for "all" every slot's. (Pre-squash
        Gaussian entropy for ``bound="squashed"``.)"""
        per_dim = self.normal.entropy()  # (B, P)
        if self.logp_mode == "all":
            h_x = per_dim.sum(-1)
        else:
            h_x = (self.categorical.probs * (per_dim @ self.owner.T)).sum(-1)
        return self.categorical.entropy(), h_x

    @override(Distribution)
    def entropy(self, **kwargs) -> torch.Tensor:
        """H(k, x) = H(k) + E_k[H(x | k)] (the chain rule)."""
        h_k, h_x = self.entropy_parts()
        return h_k + h_x

    @override(Distribution)
    def kl(self, other: TorchHybridDistribution, **kwargs) -> torch.Tensor:
        """KL(self || other) = KL(Cat || Cat') + E_{k ~ Cat}[sum_{d in D(k)} KL(N_d || N'_d)]
        (the chain rule; the tanh squash is a bijection, so it leaves the KL unchanged)."""
        kl_k = torch.distributions.kl_divergence(self.categorical, other.categorical)
        per_dim = torch.distributions.kl_divergence(self.normal, other.normal)  # (B, P)
        if self.logp_mode == "all":
            kl_x = per_dim.sum(-1)
        else:
            kl_x = (self.categorical.probs * (per_dim @ self.owner.T)).sum(-1)
        return kl_k + kl_x

    # -- sampling --------------------------------------------------------------------------------
    def _draw(self, reparameterize: bool, sample_shape):
        shape = torch.Size(sample_shape or ())
        k = self.categorical.sample(shape)
        u = self.normal.rsample(shape) if reparameterize else self.normal.sample(shape)
        x = torch.tanh(u) if self.bound == "squashed" else u
        return self.layout.to_env(k, x)

    @override(Distribution)
    def sample(self, *, sample_shape=None, return_logp: bool = False, **kwargs):
        action = self._draw(False, sample_shape)
        return (action, self.logp(action)) if return_logp else action

    @override(Distribution)
    def rsample(self, *, sample_shape=None, return_logp: bool = False, **kwargs):
        """The parameters reparameterised (the discrete part has no reparameterisation)."""
        action = self._draw(True, sample_shape)
        return (action, self.logp(action)) if return_logp else action

    @override(Distribution)
    def to_deterministic(self) -> TorchHybridDeterministic:
        """The greedy action: argmax of the logits, the (bounded) mean parameters."""
        loc = self.normal.loc
        mode = torch.tanh(loc) if self.bound == "squashed" else loc
        return TorchHybridDeterministic(self.categorical.logits.argmax(-1), mode, self.layout)

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def input_dim(layout: ActionLayout) -> int:
        """K logits + P means + P log-stds."""
        return layout.num_actions + 2 * layout.total_params

    @staticmethod
    @override(Distribution)
    def required_input_dim(space: gym.Space, layout: ActionLayout | None = None,
                           param_layout=None, **kwargs) -> int:
        return TorchHybridDistribution.input_dim(layout or layout_from_space(space,
                                                                             param_layout))

    @classmethod
    @override(Distribution)
    def from_logits(cls, logits: torch.Tensor, *, layout: ActionLayout,
                    logp_mode: str = "chosen", bound: str = "tanh_mean",
                    **kwargs) -> TorchHybridDistribution:
        """``kwargs``: what RLlib's partial classes pass along (``space``), unused."""
        k, p = layout.num_actions, layout.total_params
        if logits.shape[-1] != k + 2 * p:
            raise ValueError(f"Hybrid distribution inputs need {k} logits + {p} means + {p} "
                             f"log-stds = {k + 2 * p} columns, got {logits.shape[-1]}.")
        return cls(logits[..., :k], logits[..., k:k + p], logits[..., k + p:], layout=layout,
                   logp_mode=logp_mode, bound=bound)


class TorchHybridDeterministic(Distribution):
    """The greedy hybrid action (what RLlib's evaluation samples with ``explore=False``)."""

    def __init__(self, k: torch.Tensor, params: torch.Tensor, layout: ActionLayout):
        super().__init__()
        self.k, self.params, self.layout = k, params, layout

    @override(Distribution)
    def sample(self, *, sample_shape=None, return_logp: bool = False, **kwargs):
        if return_logp:
            raise ValueError("A deterministic action has no log-likelihood.")
        return self.layout.to_env(self.k, self.params)

    @override(Distribution)
    def rsample(self, *, sample_shape=None, return_logp: bool = False, **kwargs):
        return self.sample(sample_shape=sample_shape, return_logp=return_logp)

    @override(Distribution)
    def logp(self, value, **kwargs) -> torch.Tensor:
        """Zeros, one per row, as RLlib's ``TorchDeterministic``: RLlib's ``GetActions``
        connector records a log-prob for every action it samples, greedy ones included
        (evaluation with ``explore=False``); nothing trains on it."""
        return torch.zeros_like(self.k, dtype=self.params.dtype)

    @override(Distribution)
    def kl(self, other, **kwargs):
        raise NotImplementedError("A deterministic action has no KL divergence.")

    @override(Distribution)
    def entropy(self, **kwargs) -> torch.Tensor:
        return torch.zeros_like(self.k, dtype=self.params.dtype)

    @staticmethod
    @override(Distribution)
    def required_input_dim(space: gym.Space, **kwargs) -> int:
        raise NotImplementedError("Build it with TorchHybridDistribution.to_deterministic().")

    @classmethod
    @override(Distribution)
    def from_logits(cls, logits, **kwargs):
        raise NotImplementedError("Build it with TorchHybridDistribution.to_deterministic().")
