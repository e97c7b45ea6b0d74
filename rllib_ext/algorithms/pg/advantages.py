"""REINFORCE advantages: discounted reward-to-go minus a baseline, per complete episode.

Everything here is pure numpy so tests can check it by hand. The PG algorithm calls
:func:`add_advantages_to_episodes` on the driver, *before* the LearnerGroup shards the batch:
RLlib's ``ShardEpisodesIterator`` slices episodes to balance learners, and a reward-to-go or a
time-indexed baseline computed on a slice would be wrong. Written into the episodes'
``extra_model_outputs``, the columns are sliced along with the episode and reach every learner's
batch through RLlib's ``AddColumnsFromEpisodesToTrainBatch`` connector.

Notation (policy-gradient notes, "reward-to-go" and "baselines"):
    G_t = sum_{t'=t}^{T-1} gamma^(t'-t) r_{t'}        (reward-to-go, causality)
    G_t = R(tau) = sum_{t'=0}^{T-1} gamma^t' r_{t'}    (without reward-to-go: whole return)
    A_t = G_t - b_t                                     (advantage estimate)

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
)

#: Baselines PG knows. "none": b = 0. "mean": b = mean of G_t over every step of the
#: batch. "time_mean": b_t = mean of G_t over the episodes of the batch that reach step t.
#: "optimal": per-parameter variance-optimal b_k, computed by the learner (0 here).
BASELINES = ("none", "mean", "time_mean", "optimal")

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


def compute_baselines(returns_to_go: Sequence[np.ndarray], kind: str) -> list[np.ndarray]:
    """Per-step baseline b_t for each episode, from the reward-to-go of the whole batch.

    ``"time_mean"`` averages G_t over the episodes that are still running at step t (an
    episode of length 3 contributes to t = 0, 1, 2 only), so every b_t is a mean of real values.
    """
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
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], float]:
    """Returns (advantages, returns_to_go, baselines, scale); the first three per episode.

    With ``normalize`` the advantages of the whole batch are shifted and scaled to mean 0,
    std 1 (after the baseline): a per-batch step-size normalisation, not part of the estimator.
    ``scale`` is the divisor used (1.0 without ``normalize``), so that
    ``G_t / scale - A_t`` is the total baseline in advantage units. With ``reward_to_go=False``
    the "returns_to_go" are the whole discounted return R(tau) at every step.
    """
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
) -> None:
    """Writes the PG columns into each episode's ``extra_model_outputs``, in place.

    ADVANTAGES, RETURNS_TO_GO, BASELINE and ADVANTAGE_SCALE (see :func:`compute_advantages`),
    TRAJECTORY_ID (the episode's index in ``episodes``, which lets the learner find episode
    boundaries after batching) and DATA_AGE (``ages[i]``: iterations since episode i was
    sampled, 0 for fresh data; all 0 if ``ages`` is None).

    ``episodes`` are complete ``SingleAgentEpisode``s (``batch_mode="complete_episodes"``).
    """
    from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer

    rewards = [ep.get_rewards() for ep in episodes]
    advantages, rtg, baselines, scale = compute_advantages(
        rewards, gamma=gamma, baseline=baseline, normalize=normalize, reward_to_go=reward_to_go
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
        for key, values in columns.items():
            data = np.concatenate([np.zeros(lookback, values.dtype), values])
            ep.extra_model_outputs[key] = InfiniteLookbackBuffer(data=data, lookback=lookback)
