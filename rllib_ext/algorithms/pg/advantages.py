"""REINFORCE advantages: discounted reward-to-go minus a baseline, per complete episode.

Everything here is pure numpy so tests can check it by hand. The PG algorithm calls
:func:`add_advantages_to_episodes` on the driver, *before* the LearnerGroup shards the batch:
RLlib's ``ShardEpisodesIterator`` slices episodes to balance learners, and a reward-to-go or a
time-indexed baseline computed on a slice would be wrong. Written into the episodes'
``extra_model_outputs``, the columns are sliced along with the episode and reach every learner's
batch through RLlib's ``AddColumnsFromEpisodesToTrainBatch`` connector.

Notation (policy-gradient notes, "reward-to-go" and "baselines"):
    G_t = sum_{t'=t}^{T-1} gamma^(t'-t) r_{t'}        (reward-to-go, causality)
    A_t = G_t - b_t                                     (advantage estimate)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.signal

from rllib_ext.algorithms.pg.pg_learner import ADVANTAGES, BASELINE, RETURNS_TO_GO

#: Baselines this module knows. "none": b = 0. "mean": b = mean of G_t over every step of the
#: batch. "time_mean": b_t = mean of G_t over the episodes of the batch that reach step t.
BASELINES = ("none", "mean", "time_mean")

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


def compute_baselines(returns_to_go: Sequence[np.ndarray], kind: str) -> list[np.ndarray]:
    """Per-step baseline b_t for each episode, from the reward-to-go of the whole batch.

    ``"time_mean"`` averages G_t over the episodes that are still running at step t (an
    episode of length 3 contributes to t = 0, 1, 2 only), so every b_t is a mean of real values.
    """
    if kind == "none":
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
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Returns (advantages, returns_to_go, baselines), one array per episode.

    With ``normalize`` the advantages of the whole batch are shifted and scaled to mean 0,
    std 1 (after the baseline): a per-batch step-size normalisation, not part of the estimator.
    """
    rtg = [discounted_reward_to_go(r, gamma) for r in rewards_per_episode]
    baselines = compute_baselines(rtg, baseline)
    advantages = [g - b for g, b in zip(rtg, baselines, strict=True)]
    if normalize and advantages:
        flat = np.concatenate(advantages)
        mean, std = flat.mean(), flat.std()
        advantages = [(a - mean) / (std + _NORMALIZE_EPS) for a in advantages]
    return advantages, rtg, baselines


def add_advantages_to_episodes(episodes, *, gamma: float, baseline: str, normalize: bool) -> None:
    """Writes ADVANTAGES, RETURNS_TO_GO and BASELINE columns into each episode, in place.

    ``episodes`` are complete ``SingleAgentEpisode``s (``batch_mode="complete_episodes"``).
    """
    from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer

    rewards = [ep.get_rewards() for ep in episodes]
    advantages, rtg, baselines = compute_advantages(
        rewards, gamma=gamma, baseline=baseline, normalize=normalize
    )
    for ep, columns in zip(episodes, zip(advantages, rtg, baselines, strict=True), strict=True):
        # Pad the (unused) lookback part so the new buffers line up with the actions buffer.
        lookback = ep.actions.lookback
        for key, values in zip((ADVANTAGES, RETURNS_TO_GO, BASELINE), columns, strict=True):
            data = np.concatenate([np.zeros(lookback, np.float32), values.astype(np.float32)])
            ep.extra_model_outputs[key] = InfiniteLookbackBuffer(data=data, lookback=lookback)
