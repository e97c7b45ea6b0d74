"""CausalReach: dynamics and reward by hand, the documented influence, and that a causal fit on
random-action data ranks the action dimensions like the ground truth."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rllib_ext  # noqa: F401  (registers the env id)
from rllib_ext.algorithms.ace.causal import fit_causal_weights
from rllib_ext.envs.causal_reach import DEFAULT_INFLUENCE, CausalReachEnv


def test_registered_spaces_and_reset():
    env = gym.make("rllib_ext/CausalReach-v0")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.shape == env.action_space.shape == (6,)
    assert env.observation_space.contains(obs)
    assert ((obs >= -1.0) & (obs <= -0.5)).all()
    np.testing.assert_array_equal(env.unwrapped.influence, DEFAULT_INFLUENCE)


def test_reward_is_influence_weighted_progress_by_hand():
    env = CausalReachEnv(influence=[1.0, 0.5, 0.0], reward_noise=0.0, target=0.5)
    env.reset(seed=0)
    env._x = np.array([-0.8, 0.45, 0.0])
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, 1.0, -1.0]))
    # Joint 0: -0.8 -> -0.7, 0.1 closer (progress 1.0); joint 1: 0.45 -> 0.55 passes the target,
    # |0.05| -> |0.05| (progress 0); joint 2 moves 0.1 away (progress -1) but has influence 0.
    np.testing.assert_allclose(obs, [-0.7, 0.55, -0.1], atol=1e-6)
    np.testing.assert_allclose(info["progress"], [1.0, 0.0, -1.0], atol=1e-9)
    assert reward == pytest.approx(1.0)
    assert not terminated and not truncated


def test_distractors_never_change_the_reward_and_noise_is_bounded():
    env = CausalReachEnv(reward_noise=0.0)
    env.reset(seed=1)
    start = env._x.copy()
    _, r1, *_ = env.step(np.array([0.3, -0.2, 0.5, 1.0, -1.0, 1.0]))
    env._x = start.copy()
    _, r2, *_ = env.step(np.array([0.3, -0.2, 0.5, -1.0, 1.0, 0.0]))
    assert r1 == pytest.approx(r2)
    noisy = CausalReachEnv(reward_noise=0.5)
    noisy.reset(seed=2)
    rewards = [noisy.step(np.zeros(6))[1] for _ in range(30)]
    assert all(-0.5 <= r <= 0.5 for r in rewards) and np.std(rewards) > 0


def test_episode_truncates_at_max_steps_and_clips():
    env = CausalReachEnv(max_steps=3)
    env.reset(seed=0)
    for t in range(3):
        obs, _, terminated, truncated, _ = env.step(np.full(6, -1.0))
        assert not terminated and truncated == (t == 2)
    assert (obs >= -1.0).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="influence"):
        CausalReachEnv(influence=[1.0, -0.5])
    with pytest.raises(ValueError, match="step_size"):
        CausalReachEnv(step_size=0.0)
    with pytest.raises(ValueError, match="render_mode"):
        CausalReachEnv(render_mode="human")


def test_causal_fit_ranks_dimensions_like_the_ground_truth():
    env = CausalReachEnv()
    rng = np.random.default_rng(0)
    obs, actions, rewards = [], [], []
    o, _ = env.reset(seed=0)
    for _ in range(1000):
        a = rng.uniform(-1, 1, 6)
        obs.append(o), actions.append(a)
        o, r, _, truncated, _ = env.step(a)
        rewards.append(r)
        if truncated:
            o, _ = env.reset()
    fit = fit_causal_weights(np.array(obs), np.array(actions), np.array(rewards), random_state=0)
    assert fit.fallback is None
    w = fit.weights
    # Ground truth c = (1, 0.5, 0.1, 0, 0, 0): strong > medium > weak > distractors.
    assert w[0] > w[1] > w[2] > max(w[3:])
    np.testing.assert_allclose(fit.effects[:2], [1.0, 0.5], atol=0.1)
