"""REINFORCE advantages: discounted reward-to-go minus a baseline, per complete episode.

Everything here is pure numpy so tests can check it by hand. The PG algorithm calls
:func:`add_advantages_to_episodes` on the driver, *before* the LearnerGroup shards the batch:
RLlib's ``ShardEpisodesIterator`` slices episodes to balance learners, and a reward-to-go or a
time-indexed baseline computed on a slice would be wrong. Written into the episodes'
``extra_model_outputs``, the columns are sliced along with the episode and reach every learner's
batch through RLlib's ``AddColumnsFromEpisodesToTrainBatch`` connector.

Notation (policy-gradient notes, "reward-to-go" and "baselines"; actor-critic notes, GAE):
    G_t = sum_{t'=t}^{T-1} gamma^(t'-t) r_{t'}        (reward-to-go, causality)
    G_t = R(tau) = sum_{t'=0}^{T-1} gamma^t' r_{t'}    (without reward-to-go: whole return)
    A_t = G_t - b_t                                     (advantage estimate)
    delta_t = r_t + gamma V(s_{t+1}) - V(s_t)           (TD error of a learned V)
    A_t = sum_{l>=0} (gamma lambda)^l delta_{t+l}       (GAE, Schulman et al. 2016, Eq. 16)

With the learned state-value baseline (``"value"``) the episode's tail is bootstrapped when the
episode was *truncated* (time limit): V(s_T) stands in for the rewards after the cut, in the
TD errors and in the value targets. A *terminated* episode has V(s_T) = 0.

The ``"optimal"`` baseline is per parameter and needs score-function gradients, so it is not
computed here (b_t = 0 in these columns) but in the learner, see ``torch/score_gradients.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.signal

from rllib_ext.algorithms.pg.pg_learner import (
    ADVANTAGE_SCALE,
    ADVANTAGES,
    BASELINE,
    DATA_AGE,
    RETURNS_TO_GO,
    TRAJECTORY_ID,
    VALUE_TARGETS,
)

#: Baselines PG knows. "none": b = 0. "mean": b = mean of G_t over every step of the
#: batch. "time_mean": b_t = mean of G_t over the episodes of the batch that reach step t.
#: "optimal": per-parameter variance-optimal b_k, computed by the learner (0 here).
#: "value": a learned state-value network V(s_t) (with GAE when ``gae_lambda`` < 1).
BASELINES = ("none", "mean", "time_mean", "optimal", "value")

_NORMALIZE_EPS = 1e-8


def discounted_reward_to_go(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, with G_T = 0 after the last reward of the episode.

    A truncated episode (time limit) is treated like a terminated one: REINFORCE has no critic
    to bootstrap with, so the sum simply stops at the last observed reward. The resulting bias
    shrinks with gamma**(steps to the cut) and is the standard Monte-Carlo choice.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D (one episode), got shape {r.shape}")
    # lfilter runs y[n] = x[n] + gamma * y[n-1]; on the reversed sequence that is the
    # backwards recursion above, computed in C.
    return scipy.signal.lfilter([1.0], [1.0, -gamma], r[::-1])[::-1].copy()


def discounted_return(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """R(tau) = sum_t gamma^t r_t, repeated at every step: the estimator without reward-to-go.

    Weighting every score term of an episode with the whole return is unbiased too, but the
    rewards collected *before* step t add variance and no signal (they cannot depend on a_t).
    """
    g = discounted_reward_to_go(rewards, gamma)
    return np.full_like(g, g[0])


def generalized_advantages(
    rewards: Sequence[float], values: Sequence[float], bootstrap_value: float, *, gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(GAE advantages A_t, bootstrapped reward-to-go) of one episode.

    Args:
        rewards: r_0 .. r_{T-1}.
        values: V(s_0) .. V(s_{T-1}), in reward units.
        bootstrap_value: V(s_T) for a truncated episode, 0 for a terminated one.
        gamma: Discount.
        lam: GAE's lambda: 1 gives A_t = G_t - V(s_t) (reward-to-go minus the value baseline;
            unbiased for any V), 0 the one-step TD error (lowest variance, biased by V's error).

    The reward-to-go is G_t = sum_{t'>=t} gamma^(t'-t) r_t' + gamma^(T-t) V(s_T): the value
    network's regression target.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim != 1:
        raise ValueError(f"rewards {r.shape} and values {v.shape} must be 1-D and equal length.")
    next_v = np.append(v[1:], bootstrap_value)
    deltas = r + gamma * next_v - v
    # A_t = delta_t + gamma lambda A_{t+1}: the reward-to-go recursion with gamma * lambda.
    advantages = discounted_reward_to_go(deltas, gamma * lam)
    tail = bootstrap_value * gamma ** np.arange(len(r), 0, -1)  # gamma^(T-t) V(s_T)
    return advantages, discounted_reward_to_go(r, gamma) + tail


def normalization_stats(returns_to_go: Sequence[np.ndarray]) -> tuple[float, float]:
    """(mean, std) of the batch's reward-to-go: the value network predicts V in these units
    ((V - mean) / std), so its targets are O(1) whatever the reward scale."""
    flat = np.concatenate(returns_to_go) if returns_to_go else np.zeros(1)
    return float(flat.mean()), float(flat.std() + _NORMALIZE_EPS)


def compute_baselines(returns_to_go: Sequence[np.ndarray], kind: str) -> list[np.ndarray]:
    """Per-step baseline b_t for each episode, from the reward-to-go of the whole batch.

    ``"time_mean"`` averages G_t over the episodes that are still running at step t (an
    episode of length 3 contributes to t = 0, 1, 2 only), so every b_t is a mean of real values.
    """
    if kind == "value":
        raise ValueError("The value baseline comes from generalized_advantages().")
    if kind in ("none", "optimal"):
        # "optimal" is per parameter: the learner computes it from score-function gradients.
        return [np.zeros_like(g) for g in returns_to_go]
    if kind == "mean":
        b = float(np.concatenate(returns_to_go).mean()) if returns_to_go else 0.0
        return [np.full_like(g, b) for g in returns_to_go]
    if kind == "time_mean":
        horizon = max((len(g) for g in returns_to_go), default=0)
        sums = np.zeros(horizon)
        counts = np.zeros(horizon)
        for g in returns_to_go:
            sums[: len(g)] += g
            counts[: len(g)] += 1
        per_t = sums / np.maximum(counts, 1)
        return [per_t[: len(g)].copy() for g in returns_to_go]
    raise ValueError(f"Unknown baseline {kind!r}; choose one of {BASELINES}.")


def compute_advantages(
    rewards_per_episode: Sequence[Sequence[float]],
    *,
    gamma: float,
    baseline: str,
    normalize: bool,
    reward_to_go: bool = True,
    values: Sequence[np.ndarray] | None = None,
    bootstrap_values: Sequence[float] | None = None,
    gae_lambda: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], float]:
    """Returns (advantages, returns_to_go, baselines, scale); the first three per episode.

    ``baseline="value"`` needs ``values`` (V(s_0..s_{T-1}) per episode, reward units) and
    ``bootstrap_values`` (V(s_T) if the episode was truncated, else 0); the advantages are
    GAE(``gae_lambda``), the returns the bootstrapped reward-to-go and the baselines
    G_t - A_t (V(s_t) itself when ``gae_lambda`` = 1).

    With ``normalize`` the advantages of the whole batch are shifted and scaled to mean 0,
    std 1 (after the baseline): a per-batch step-size normalisation, not part of the estimator.
    ``scale`` is the divisor used (1.0 without ``normalize``), so that
    ``G_t / scale - A_t`` is the total baseline in advantage units. With ``reward_to_go=False``
    the "returns_to_go" are the whole discounted return R(tau) at every step.
    """
    if baseline == "value":
        if values is None or bootstrap_values is None or not reward_to_go:
            raise ValueError("baseline='value' needs values, bootstrap_values and reward_to_go.")
        pairs = [generalized_advantages(r, v, b, gamma=gamma, lam=gae_lambda) for r, v, b in
                 zip(rewards_per_episode, values, bootstrap_values, strict=True)]
        advantages, rtg = [a for a, _ in pairs], [g for _, g in pairs]
        baselines = [g - a for a, g in pairs]
    else:
        to_go = discounted_reward_to_go if reward_to_go else discounted_return
        rtg = [to_go(r, gamma) for r in rewards_per_episode]
        baselines = compute_baselines(rtg, baseline)
        advantages = [g - b for g, b in zip(rtg, baselines, strict=True)]
    scale = 1.0
    if normalize and advantages:
        flat = np.concatenate(advantages)
        mean, scale = flat.mean(), float(flat.std() + _NORMALIZE_EPS)
        advantages = [(a - mean) / scale for a in advantages]
    return advantages, rtg, baselines, scale


def add_advantages_to_episodes(
    episodes,
    *,
    gamma: float,
    baseline: str,
    normalize: bool,
    reward_to_go: bool = True,
    ages: Sequence[int] | None = None,
    normalized_values: Sequence[np.ndarray] | None = None,
    gae_lambda: float = 1.0,
) -> None:
    """Writes the PG columns into each episode's ``extra_model_outputs``, in place.

    ADVANTAGES, RETURNS_TO_GO, BASELINE and ADVANTAGE_SCALE (see :func:`compute_advantages`),
    TRAJECTORY_ID (the episode's index in ``episodes``, which lets the learner find episode
    boundaries after batching) and DATA_AGE (``ages[i]``: iterations since episode i was
    sampled, 0 for fresh data; all 0 if ``ages`` is None).

    With ``baseline="value"``, ``normalized_values[i]`` holds the value network's outputs at
    all T+1 observations of episode i, in the normalised units of :func:`normalization_stats`
    of this batch's (Monte-Carlo) reward-to-go; they are mapped back to reward units, the last
    one bootstraps truncated episodes, and VALUE_TARGETS gets the normalised bootstrapped
    reward-to-go the value network is fitted to.

    ``episodes`` are complete ``SingleAgentEpisode``s (``batch_mode="complete_episodes"``).
    """
    from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer

    rewards = [ep.get_rewards() for ep in episodes]
    values = bootstraps = None
    if baseline == "value":
        mean, std = normalization_stats([discounted_reward_to_go(r, gamma) for r in rewards])
        values = [np.asarray(v, np.float64) * std + mean for v in normalized_values]
        bootstraps = [v[-1] if ep.is_truncated else 0.0 for v, ep in zip(values, episodes,
                                                                          strict=True)]
        values = [v[:-1] for v in values]
    advantages, rtg, baselines, scale = compute_advantages(
        rewards, gamma=gamma, baseline=baseline, normalize=normalize, reward_to_go=reward_to_go,
        values=values, bootstrap_values=bootstraps, gae_lambda=gae_lambda,
    )
    ages = [0] * len(episodes) if ages is None else list(ages)
    for i, (ep, adv, g, b, age) in enumerate(
        zip(episodes, advantages, rtg, baselines, ages, strict=True)
    ):
        # Pad the (unused) lookback part so the new buffers line up with the actions buffer.
        lookback = ep.actions.lookback
        columns = {
            ADVANTAGES: adv.astype(np.float32),
            RETURNS_TO_GO: g.astype(np.float32),
            BASELINE: b.astype(np.float32),
            ADVANTAGE_SCALE: np.full(len(g), scale, np.float32),
            TRAJECTORY_ID: np.full(len(g), i, np.int64),
            DATA_AGE: np.full(len(g), age, np.int64),
        }
        if baseline == "value":
            columns[VALUE_TARGETS] = ((g - mean) / std).astype(np.float32)
        for key, values in columns.items():
            data = np.concatenate([np.zeros(lookback, values.dtype), values])
            ep.extra_model_outputs[key] = InfiniteLookbackBuffer(data=data, lookback=lookback)
