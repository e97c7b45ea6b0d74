"""Reward-to-go, baselines and advantage normalisation, against hand-computed numbers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_ext.algorithms.pg.advantages import (
    add_advantages_to_episodes,
    compute_advantages,
    compute_baselines,
    discounted_reward_to_go,
    generalized_advantages,
    normalization_stats,
)
from rllib_ext.algorithms.pg.pg_learner import (
    ADVANTAGE_SCALE,
    ADVANTAGES,
    BASELINE,
    DATA_AGE,
    RETURNS_TO_GO,
    TRAJECTORY_ID,
    VALUE_TARGETS,
)


def test_reward_to_go_by_hand():
    # RLlib's historical PG test: rewards [1, 1, 1], gamma 0.99.
    # G_2 = 1; G_1 = 1 + .99 * 1 = 1.99; G_0 = 1 + .99 * 1.99 = 2.9701.
    np.testing.assert_allclose(discounted_reward_to_go([1, 1, 1], 0.99), [2.9701, 1.99, 1.0])


def test_reward_to_go_undiscounted_and_uneven_rewards():
    # gamma = 1: reverse cumulative sum. [1, 0, 2] -> [3, 2, 2].
    np.testing.assert_allclose(discounted_reward_to_go([1, 0, 2], 1.0), [3, 2, 2])
    # gamma = .5: G_2 = 4, G_1 = 0 + 2 = 2, G_0 = 2 + 1 = 3.
    np.testing.assert_allclose(discounted_reward_to_go([2, 0, 4], 0.5), [3, 2, 4])


@pytest.mark.parametrize("seed", range(5))
def test_reward_to_go_satisfies_bellman_recursion(seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=rng.integers(1, 50))
    gamma = rng.uniform(0.5, 1.0)
    g = discounted_reward_to_go(r, gamma)
    np.testing.assert_allclose(g[:-1], r[:-1] + gamma * g[1:])
    assert g[-1] == pytest.approx(r[-1])


def test_two_episodes_never_mix():
    # Episode A [1, 1, 1], episode B [1, 1]: each sums only its own rewards.
    _, rtg, _, _ = compute_advantages([[1, 1, 1], [1, 1]], gamma=0.99, baseline="none",
                                   normalize=False)
    np.testing.assert_allclose(rtg[0], [2.9701, 1.99, 1.0])
    np.testing.assert_allclose(rtg[1], [1.99, 1.0])


def test_mean_baseline_by_hand():
    # All steps of both episodes: (2.9701 + 1.99 + 1 + 1.99 + 1) / 5 = 8.9501 / 5 = 1.79002.
    adv, rtg, base, _ = compute_advantages([[1, 1, 1], [1, 1]], gamma=0.99, baseline="mean",
                                        normalize=False)
    np.testing.assert_allclose(base[0], [1.79002] * 3)
    np.testing.assert_allclose(base[1], [1.79002] * 2)
    np.testing.assert_allclose(adv[0], [2.9701 - 1.79002, 1.99 - 1.79002, 1 - 1.79002])


def test_time_mean_baseline_by_hand():
    # t=0: (2.9701 + 1.99) / 2 = 2.48005; t=1: (1.99 + 1) / 2 = 1.495; t=2: only A -> 1.0.
    base = compute_baselines([np.array([2.9701, 1.99, 1.0]), np.array([1.99, 1.0])], "time_mean")
    np.testing.assert_allclose(base[0], [2.48005, 1.495, 1.0])
    np.testing.assert_allclose(base[1], [2.48005, 1.495])


def test_normalised_advantages_have_zero_mean_unit_std():
    adv, _, _, scale = compute_advantages([[1, 2, 3], [0, 5]], gamma=0.9, baseline="mean",
                                   normalize=True)
    flat = np.concatenate(adv)
    assert flat.mean() == pytest.approx(0.0, abs=1e-7)
    assert flat.std() == pytest.approx(1.0, abs=1e-6)
    # The divisor is returned: the raw advantages' std (plus the 1e-8 guard).
    _, rtg, base, _ = compute_advantages([[1, 2, 3], [0, 5]], gamma=0.9, baseline="mean",
                                         normalize=False)
    raw = np.concatenate(rtg) - np.concatenate(base)
    assert scale == pytest.approx(raw.std())


def test_whole_return_without_reward_to_go():
    # reward_to_go=False: every step carries R(tau) = G_0. [1, 1, 1] at .99 -> 2.9701 x 3.
    adv, rtg, _, scale = compute_advantages([[1, 1, 1], [2]], gamma=0.99, baseline="none",
                                            normalize=False, reward_to_go=False)
    np.testing.assert_allclose(rtg[0], [2.9701] * 3)
    np.testing.assert_allclose(adv[1], [2.0])
    assert scale == 1.0


def test_optimal_baseline_is_left_to_the_learner():
    _, _, base, _ = compute_advantages([[1, 1, 1]], gamma=0.99, baseline="optimal",
                                       normalize=False)
    np.testing.assert_array_equal(base[0], np.zeros(3))


def test_unknown_baseline_names_the_choices():
    with pytest.raises(ValueError, match="time_mean"):
        compute_baselines([np.ones(2)], "median")


def _episode(rewards, *, terminated=False, truncated=False, lookback=0):
    """A finished CartPole-shaped episode with ``lookback`` steps of history before t=0."""
    n = lookback + len(rewards)
    ep = SingleAgentEpisode(
        observations=[np.zeros(4, np.float32)] * (n + 1),
        actions=[0] * n,
        rewards=[0.0] * lookback + list(rewards),
        terminated=terminated,
        truncated=truncated,
        len_lookback_buffer=lookback,
        observation_space=gym.spaces.Box(-1, 1, (4,)),
        action_space=gym.spaces.Discrete(2),
    )
    return ep.to_numpy()


def test_episode_columns_truncated_and_with_lookback():
    # A terminated and a truncated (time-limit) episode; the truncated one carries two lookback
    # steps whose rewards must not count. Truncation: no bootstrap, the sum stops at the cut.
    done = _episode([1, 1, 1], terminated=True)
    cut = _episode([1, 1], truncated=True, lookback=2)
    add_advantages_to_episodes([done, cut], gamma=0.99, baseline="none", normalize=False,
                               ages=[0, 3])
    np.testing.assert_allclose(done.get_extra_model_outputs(RETURNS_TO_GO), [2.9701, 1.99, 1.0])
    np.testing.assert_allclose(cut.get_extra_model_outputs(RETURNS_TO_GO), [1.99, 1.0])
    np.testing.assert_allclose(cut.get_extra_model_outputs(ADVANTAGES), [1.99, 1.0])
    np.testing.assert_allclose(cut.get_extra_model_outputs(BASELINE), [0.0, 0.0])
    # Bookkeeping for the learner: episode index, data age and the normalisation divisor.
    np.testing.assert_array_equal(done.get_extra_model_outputs(TRAJECTORY_ID), [0, 0, 0])
    np.testing.assert_array_equal(cut.get_extra_model_outputs(TRAJECTORY_ID), [1, 1])
    np.testing.assert_array_equal(cut.get_extra_model_outputs(DATA_AGE), [3, 3])
    np.testing.assert_array_equal(done.get_extra_model_outputs(DATA_AGE), [0, 0, 0])
    np.testing.assert_array_equal(cut.get_extra_model_outputs(ADVANTAGE_SCALE), [1.0, 1.0])
    # Slicing the episode (what LearnerGroup sharding does) keeps the columns aligned.
    np.testing.assert_allclose(done[1:].get_extra_model_outputs(RETURNS_TO_GO), [1.99, 1.0])


# -- the learned value baseline and GAE ---------------------------------------------------------


def test_gae_by_hand_bootstraps_truncated_not_terminated_episodes():
    """Two episodes, gamma 0.9, lambda 0.8. Episode A is truncated after rewards [1, 2] with
    V(s_0..s_2) = 0.5, 1.0, 2.0: delta_0 = 1 + .9 * 1 - .5 = 1.4, delta_1 = 2 + .9 * 2 - 1 = 2.8,
    A_1 = 2.8, A_0 = 1.4 + .72 * 2.8 = 3.416; targets G_1 = 2 + .9 * 2 = 3.8,
    G_0 = 1 + .9 * 2 + .81 * 2 = 4.42. Episode B terminates after reward 3 with V(s_0) = 1 and
    V(s_1) = 5, which must be ignored: A_0 = 3 - 1 = 2, G_0 = 3."""
    a, g = generalized_advantages([1.0, 2.0], [0.5, 1.0], 2.0, gamma=0.9, lam=0.8)
    np.testing.assert_allclose(a, [3.416, 2.8])
    np.testing.assert_allclose(g, [4.42, 3.8])
    # Through the episode columns, from normalised network outputs (MC reward-to-go stats:
    # [2.8, 2, 3] -> mean 2.6, std sqrt(0.56 / 3)).
    mean, std = 2.6, float(np.sqrt(0.56 / 3))
    assert normalization_stats([np.array([2.8, 2.0]), np.array([3.0])]) == pytest.approx(
        (mean, std))
    episodes = [_episode([1.0, 2.0], truncated=True), _episode([3.0], terminated=True)]
    values = [np.array([0.5, 1.0, 2.0]), np.array([1.0, 5.0])]
    add_advantages_to_episodes(
        episodes, gamma=0.9, baseline="value", normalize=False, gae_lambda=0.8,
        normalized_values=[(v - mean) / std for v in values])
    column = lambda ep, key: ep.get_extra_model_outputs(key)  # noqa: E731
    np.testing.assert_allclose(column(episodes[0], ADVANTAGES), [3.416, 2.8], rtol=1e-5)
    np.testing.assert_allclose(column(episodes[1], ADVANTAGES), [2.0], rtol=1e-5)
    np.testing.assert_allclose(column(episodes[0], RETURNS_TO_GO), [4.42, 3.8], rtol=1e-5)
    np.testing.assert_allclose(column(episodes[1], RETURNS_TO_GO), [3.0], rtol=1e-5)
    np.testing.assert_allclose(column(episodes[0], VALUE_TARGETS),
                               (np.array([4.42, 3.8]) - mean) / std, rtol=1e-5)
    # The recorded baseline is G - A (V(s_t) only at lambda = 1).
    np.testing.assert_allclose(column(episodes[0], BASELINE), [4.42 - 3.416, 1.0], rtol=1e-5)


def test_gae_lambda_one_is_reward_to_go_minus_value_and_zero_is_td_error():
    rng = np.random.default_rng(0)
    r, v, boot = rng.normal(size=6), rng.normal(size=6), 0.7
    a1, g = generalized_advantages(r, v, boot, gamma=0.95, lam=1.0)
    np.testing.assert_allclose(a1, g - v)
    a0, _ = generalized_advantages(r, v, boot, gamma=0.95, lam=0.0)
    np.testing.assert_allclose(a0, r + 0.95 * np.append(v[1:], boot) - v)


@pytest.mark.parametrize("value", [-3.0, 0.0, 0.4, 10.0])
def test_value_baseline_keeps_the_bandit_gradient_unbiased(value):
    """One-step bandit, softmax policy pi = softmax(theta), rewards r = [1, 3]: the exact
    expected score-function gradient sum_a pi(a) grad log pi(a) A(a), with A from the value
    path (terminated one-step episodes: A = r - V(s)), equals grad E[r] = pi (r - pi.r) for
    any V(s) (the baseline does not depend on the action)."""
    theta = np.array([0.3, -0.2])
    pi = np.exp(theta) / np.exp(theta).sum()
    r = np.array([1.0, 3.0])
    expected = pi * (r - pi @ r)
    gradient = np.zeros(2)
    for a in range(2):
        adv, _, _, _ = compute_advantages([[r[a]]], gamma=1.0, baseline="value", normalize=False,
                                          values=[np.array([value])], bootstrap_values=[0.0])
        grad_log_pi = np.eye(2)[a] - pi
        gradient += pi[a] * grad_log_pi * adv[0][0]
    np.testing.assert_allclose(gradient, expected)
