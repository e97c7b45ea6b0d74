"""gym-hybrid's Moving and Sliding: gymnasium's checks and hand-derived steps."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rllib_ext  # noqa: F401  (registers the ids)
from rllib_ext.envs.hybrid import ACCELERATE, BRAKE, TURN, MovingEnv, SlidingEnv

NO_PARAMS = np.zeros(2, np.float32)


def _placed(env_cls, *, x=0.0, y=0.0, theta=0.0, speed=0.0, target=(0.5, 0.5)):
    env = env_cls()
    env.reset(seed=0)
    env.x, env.y, env.theta, env.phi, env.speed = x, y, theta, theta, speed
    env.target = np.array(target)
    env.distance = env._distance()
    return env


@pytest.mark.parametrize("env_id", ["rllib_ext/Moving-v0", "rllib_ext/Sliding-v0"])
def test_gymnasium_check_env_and_flat_action_space(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped)
    assert env.action_space == gym.spaces.Tuple((
        gym.spaces.Discrete(3),
        gym.spaces.Box(np.array([0, -1], np.float32), np.array([1, 1], np.float32))))
    obs, _ = env.reset(seed=3)
    assert obs.shape == (10,) and env.observation_space.contains(obs)
    assert obs[2] == 0 and obs[9] == 0  # speed 0, step 0


def test_reset_draws_target_then_position_then_heading():
    env = MovingEnv()
    obs, _ = env.reset(seed=7)
    rng = np.random.default_rng(7)  # gymnasium seeds np_random with a PCG64 Generator
    target = rng.uniform(-0.9, 0.9, 2)
    position = rng.uniform(-1, 1, 2)
    theta = rng.uniform(0, 2 * math.pi)
    np.testing.assert_allclose(obs[:8], [*position, 0, math.cos(theta), math.sin(theta),
                                         *target, math.hypot(*(position - target))], rtol=1e-6)


def test_moving_accelerate_moves_along_the_heading():
    env = _placed(MovingEnv, theta=math.pi / 2, speed=1.0)
    obs, reward, terminated, truncated, _ = env.step((ACCELERATE, np.array([0.4, 0.9])))
    # speed 1 + 0.5 * 0.4 = 1.2; move 0.005 * 1.2 = 0.006 straight up (theta = pi / 2).
    assert env.speed == pytest.approx(1.2)
    assert (env.x, env.y) == pytest.approx((0.0, 0.006))
    progress = math.hypot(0.5, 0.5) - math.hypot(0.5, 0.494)
    assert reward == pytest.approx(progress - 0.001)
    assert not terminated and not truncated and obs[9] == pytest.approx(1 / 200)


def test_accelerate_clips_its_parameter_to_0_1():
    env = _placed(MovingEnv, speed=1.0)
    env.step((ACCELERATE, np.array([-0.7, 0.0])))
    assert env.speed == 1.0
    env.step((ACCELERATE, np.array([3.0, 0.0])))
    assert env.speed == pytest.approx(1.5)


def test_turn_uses_the_second_parameter_and_wraps():
    env = _placed(MovingEnv, theta=1.75 * math.pi, speed=0.0)
    env.step((TURN, np.array([1.0, 0.5])))  # + pi/2 * 0.5 = pi/4: 2 pi -> 0
    assert env.theta == pytest.approx(0.0, abs=1e-12)
    env.step((TURN, np.array([0.0, -2.0])))  # clipped to -1: -pi/2 -> 3 pi / 2
    assert env.theta == pytest.approx(1.5 * math.pi)


def test_brake_removes_break_value_then_stops():
    env = _placed(MovingEnv, speed=0.35)
    env.step((BRAKE, NO_PARAMS))
    assert env.speed == pytest.approx(0.25)
    env.speed = 0.05
    env.step((BRAKE, NO_PARAMS))
    assert env.speed == 0.0


def test_stopping_inside_the_target_ends_with_the_bonus():
    env = _placed(MovingEnv, x=0.45, y=0.5, speed=0.05)  # 0.05 from the centre
    _, reward, terminated, _, _ = env.step((BRAKE, NO_PARAMS))
    assert terminated and reward == pytest.approx(1.0)  # no move at speed 0: progress 0
    # Inside the target but still moving: no bonus, the episode goes on.
    env = _placed(MovingEnv, x=0.45, y=0.5, speed=0.5)
    _, reward, terminated, _, _ = env.step((BRAKE, NO_PARAMS))
    assert not terminated and reward < 0.5


def test_leaving_the_field_and_the_step_limit_cost_one():
    env = _placed(MovingEnv, x=0.9999, theta=0.0, speed=1.0)
    _, reward, terminated, _, _ = env.step((ACCELERATE, NO_PARAMS))
    assert terminated and reward == -1.0 and env.x > 1
    env = _placed(MovingEnv)
    for _ in range(200):
        _, reward, terminated, _, _ = env.step((TURN, NO_PARAMS))
        assert not terminated
    _, reward, terminated, truncated, _ = env.step((TURN, NO_PARAMS))  # step 201
    assert terminated and not truncated and reward == -1.0


def test_sliding_adds_the_acceleration_as_a_vector():
    env = _placed(SlidingEnv, theta=0.0, speed=0.5)  # moving along phi = 0
    env.step((TURN, np.array([0.0, 1.0])))           # heading pi/2, still sliding along 0
    assert env.theta == pytest.approx(math.pi / 2) and env.phi == 0.0
    assert (env.x, env.y) == pytest.approx((0.0025, 0.0))
    env.step((ACCELERATE, np.array([1.0, 0.0])))     # (0.5, 0) + (0.5, pi/2)
    assert env.speed == pytest.approx(math.sqrt(0.5))
    assert env.phi == pytest.approx(math.pi / 4)
    step = 0.005 * math.sqrt(0.5)
    assert (env.x, env.y) == pytest.approx((0.0025 + step / math.sqrt(2), step / math.sqrt(2)))


def test_sliding_brake_to_zero_realigns_with_the_heading():
    env = _placed(SlidingEnv, theta=0.0, speed=0.05)
    env.theta = 1.0
    env.step((BRAKE, NO_PARAMS))
    assert env.speed == 0.0 and env.phi == 1.0


@pytest.mark.parametrize("action, match", [
    ((3, NO_PARAMS), "index must be 0, 1 or 2"),
    ((0, np.array([np.nan, 0.0])), "must be finite"),
    ((0, np.array([1.0])), "Expected an action"),
])
def test_bad_actions_are_rejected(action, match):
    env = _placed(MovingEnv)
    with pytest.raises(ValueError, match=match):
        env.step(action)
