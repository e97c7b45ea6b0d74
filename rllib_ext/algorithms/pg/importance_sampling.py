"""Importance weights for reusing episodes sampled by an older policy (off-policy PG).

Pure numpy on detached log-probabilities, so the tests can check every number by hand. The
learner calls :func:`importance_coefficients` with the current policy's log-probs of the stored
actions; the gradient then flows through ``log pi_theta`` only, which is exact: for a weight
w(theta) = pi_theta / mu, grad w = w * grad log pi_theta.

Notation (policy-gradient notes, "off-policy policy gradients"): episodes were sampled by the
behaviour policy mu (the policy at sampling time, whose log-probs the env runner recorded as
``Columns.ACTION_LOGP``); rho_t = pi_theta(a_t|s_t) / mu(a_t|s_t).

``"trajectory"``
    w_t = prod_{t'=0}^{T-1} rho_t' for every step of the episode: the full-trajectory ratio
    pi_theta(tau) / mu(tau) (dynamics cancel). Unbiased; variance grows exponentially with T.
``"per_decision"``
    Causal products W_t = prod_{t'<=t} rho_t' (Precup et al., 2000): the score at t is weighted
    by the ratios of the actions up to t, and each later reward r_t'' by the ratios up to t'':
        c_t = sum_{t''>=t} gamma^(t''-t) r_t'' W_t''  -  b_t W_t.
    Unbiased like "trajectory" (future ratios average to 1 given the past), with lower variance.
``"per_step"``
    w_t = rho_t only: the first-order approximation that ignores the ratio of state
    distributions d^pi(s_t) / d^mu(s_t). Biased unless pi and mu are close, lowest variance.

``clip`` truncates the weights (w_t, W_t or rho_t) at ``clip`` (truncated IS, Ionides 2008):
bounded variance at the price of a bias towards mu. ``self_normalize`` divides the weights by
their batch mean (weighted IS), so the loss becomes sum_t w_t x_t / sum_t w_t: biased for finite
batches but consistent, and immune to the overall scale of the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.signal

IMPORTANCE_SAMPLING_MODES = ("trajectory", "per_decision", "per_step")

# Log-weights are capped here before exponentiation so that products of hundreds of ratios stay
# finite in float32 (e^30 ~ 1e13): a numerical guard, equivalent to clip=1e13, that only acts
# where a run without ``clip`` has already lost all useful signal to variance.
_MAX_LOG_WEIGHT = 30.0


def _segments(lengths: Sequence[int]) -> list[slice]:
    ends = np.cumsum(lengths)
    return [slice(int(e - n), int(e)) for n, e in zip(lengths, ends, strict=True)]


def importance_weights(
    log_ratios: np.ndarray,
    lengths: Sequence[int],
    mode: str,
    *,
    clip: float | None = None,
    self_normalize: bool = False,
) -> np.ndarray:
    """Per-step weights w_t (``"per_decision"``: W_t) for a batch of consecutive episodes.

    Args:
        log_ratios: log pi_theta(a_t|s_t) - log mu(a_t|s_t), one per step, episodes concatenated.
        lengths: Steps per episode, in batch order; must sum to ``len(log_ratios)``.
        mode: One of ``IMPORTANCE_SAMPLING_MODES``.
        clip: Upper bound on each weight, or None.
        self_normalize: Divide the weights by their mean over the batch.
    """
    log_ratios = np.asarray(log_ratios, dtype=np.float64)
    if int(np.sum(lengths)) != len(log_ratios):
        raise ValueError(
            f"Episode lengths sum to {int(np.sum(lengths))}, but got {len(log_ratios)} steps."
        )
    lengths = np.asarray(lengths, dtype=np.int64)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    if mode == "trajectory":
        log_w = np.bincount(episode, weights=log_ratios, minlength=len(lengths))[episode]
    elif mode == "per_decision":
        # Running sum within each episode: global cumulative sum minus the sum before the
        # episode's first step.
        cumulative = np.cumsum(log_ratios)
        before = np.concatenate([[0.0], cumulative])[np.cumsum(lengths) - lengths]
        log_w = cumulative - before[episode]
    elif mode == "per_step":
        log_w = log_ratios
    else:
        raise ValueError(
            f"Unknown importance_sampling={mode!r}; choose one of {IMPORTANCE_SAMPLING_MODES}."
        )
    w = np.exp(np.minimum(log_w, _MAX_LOG_WEIGHT))
    if clip is not None:
        w = np.minimum(w, clip)
    if self_normalize and len(w):
        w = w / w.mean()
    return w


def importance_coefficients(
    weights: np.ndarray,
    lengths: Sequence[int],
    mode: str,
    *,
    advantages: np.ndarray,
    rewards: np.ndarray,
    baselines: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """Per-step coefficient c_t of the score term: the loss is -mean_t(log pi_theta(a_t|s_t) c_t).

    ``"trajectory"`` and ``"per_step"``: c_t = w_t A_t. ``"per_decision"``: the causal form of
    the module docstring, c_t = sum_{t''>=t} gamma^(t''-t) r_t'' W_t'' - b_t W_t, with ``rewards``
    and ``baselines`` in the units of ``advantages`` (divided by the normalisation scale); with
    all W = 1 it equals A_t = G_t - b_t exactly.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if mode != "per_decision":
        return weights * np.asarray(advantages, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    coef = np.empty_like(weights)
    for seg in _segments(lengths):
        weighted = rewards[seg] * weights[seg]
        # Discounted reward-to-go of the weighted rewards (lfilter on the reversed sequence).
        coef[seg] = scipy.signal.lfilter([1.0], [1.0, -gamma], weighted[::-1])[::-1]
    return coef - np.asarray(baselines, dtype=np.float64) * weights


def weight_statistics(weights: np.ndarray) -> dict[str, float]:
    """Mean, max and Kish's effective sample size (sum w)^2 / sum w^2 of the weights."""
    w = np.asarray(weights, dtype=np.float64)
    if not len(w):
        return {"mean": 0.0, "max": 0.0, "ess": 0.0}
    sq = float(np.sum(w * w))
    return {
        "mean": float(w.mean()),
        "max": float(w.max()),
        "ess": float(w.sum() ** 2 / sq) if sq > 0 else 0.0,
    }
