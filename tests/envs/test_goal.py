"""Robot Soccer Goal: reset geometry, a hand-derived kick, the original's quirks, termination
(goal, catch, ball out, time limit), seeding and action errors. ``NoNoise`` removes the
randomness (all uniform draws at their midpoint, i.e. zero noise)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rllib_ext  # noqa: F401
from rllib_ext.envs import GoalEnv
from rllib_ext.envs.goal import KICKABLE, keeper_target

PARAMS = ([10.0, 0.0], [0.0], [0.0])


def _env_at(no_noise, player, ball, keeper, orientation=0.0) -> GoalEnv:
    env = GoalEnv()
    env.reset(seed=0)
    env.np_random = no_noise
    env.player.x, env.player.y = player
    env.player.orientation = orientation
    env.ball.x, env.ball.y = ball
    env.goalie.x, env.goalie.y = keeper
    return env


def test_spaces_match_the_original():
    env = GoalEnv()
    k, params = env.action_space.spaces
    assert k.n == 3
    np.testing.assert_allclose(params.spaces[0].low, [0, -15])
    np.testing.assert_allclose(params.spaces[0].high, [40, 15])
    for box in params.spaces[1:]:
        np.testing.assert_allclose((box.low, box.high), ([-7.01], [7.01]))
    box, frames = env.observation_space.spaces
    assert box.shape == (14,) and frames.n == 200


def test_reset_geometry():
    (state, frames), _ = GoalEnv().reset(seed=11)
    px, py, _, _, angle, gx, gy, _, _, g_angle, bx, by, bvx, bvy = state.astype(np.float64)
    assert px == 0 and -15 <= py <= 15 and frames == 0
    assert angle == pytest.approx(math.atan2(-py, 20.0), abs=1e-6)  # facing the goal centre
    assert math.hypot(bx - px, by - py) == pytest.approx(KICKABLE, abs=1e-5)  # kickable
    np.testing.assert_allclose((gx, gy), keeper_target(bx, by), atol=1e-5)
    assert g_angle == pytest.approx(math.atan2(by - gy, bx - gx), abs=1e-5)
    assert bvx == bvy == 0


def test_keeper_target_by_hand():
    # Ball (10, 5): line to the goal centre y = -0.5 x + 10; x < 14.5 -> x = 10, bounded to
    # 14.5 (goal-area front), y = -0.5 * 14.5 + 10 = 2.75.
    assert keeper_target(10.0, 5.0) == pytest.approx((14.5, 2.75))
    # Ball (16, -8): x >= 14.5 and y >= -9.16 -> intersect y = +9.16: grad = 8 / 4 = 2,
    # yint = -8 - 32 = -40, x = (9.16 + 40) / 2 = 24.58 -> bounded to 20; y = 0 -> (20, 0).
    assert keeper_target(16.0, -8.0) == pytest.approx((20.0, 0.0))


@pytest.mark.parametrize("ball, distance", [
    ((10.0, 0.0), 10.0),
    ((10.0, 10.0), math.hypot(10.0, 10.0 - 7.01)),   # nearest post (20, 7.01)
    ((5.0, -9.0), math.hypot(15.0, 9.0 - 7.01)),     # nearest post (20, -7.01)
    ((21.0, 10.0), 10.0 - 7.01),
    ((21.0, 3.0), 0.0),
])
def test_goal_distance_by_hand(no_noise, ball, distance):
    env = _env_at(no_noise, (0.0, 0.0), ball, (18.0, 0.0))
    assert env.ball.goal_distance() == pytest.approx(distance)


def test_first_frame_of_a_kick_by_hand(no_noise):
    env = _env_at(no_noise, (5.0, 2.0), (6.5, 2.0), (15.0, 12.0))
    # kick_to(target): ball acceleration = (1 - 0.94) (target - player) - ball velocity, and the
    # kick power is chosen so that, without noise, exactly that acceleration is applied. The
    # target is (x, x) (the original's quirk): (8, 8) for x = 8.
    accel = (0.06 * (8.0 - 5.0), 0.06 * (8.0 - 2.0))
    env._update("kickto", np.array([8.0, -12.0]))
    assert (env.ball.x, env.ball.y) == pytest.approx((6.5 + accel[0], 2.0 + accel[1]))
    assert (env.ball.vx, env.ball.vy) == pytest.approx((0.94 * accel[0], 0.94 * accel[1]))


def test_quirk_kick_to_ignores_y():
    results = []
    for y in (-10.0, 10.0):
        env = GoalEnv()
        env.reset(seed=4)
        obs, reward, terminated, _, info = env.step((0, ([12.0, y], [0.0], [0.0])))
        results.append((obs[0], reward, terminated, info["frames"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1:] == results[1][1:]


def test_quirk_both_shoot_actions_are_the_same_routine():
    results = []
    for k in (1, 2):
        env = GoalEnv()
        env.reset(seed=8)
        obs, reward, terminated, _, _ = env.step((k, ([0.0, 0.0], [3.0], [3.0])))
        results.append((obs[0], reward, terminated))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1:] == results[1][1:]


def test_goal_scores_50(no_noise):
    env = _env_at(no_noise, (17.5, 0.0), (18.5, 0.0), (15.0, 13.0))
    _, reward, terminated, _, _ = env.step((1, ([0.0, 0.0], [0.0], [0.0])))
    assert terminated and reward == 50.0
    assert env.ball.in_net()


def test_keeper_catch_pays_minus_distance(no_noise):
    env = _env_at(no_noise, (10.0, 0.0), (11.0, 0.0), (12.5, 0.0))
    _, reward, terminated, _, info = env.step((0, ([10.0, 0.0], [0.0], [0.0])))
    assert terminated and info["frames"] == 1
    assert env.goalie.distance(env.ball) < 2.0
    assert reward == pytest.approx(-(20.0 - env.ball.x))


def test_ball_out_pays_minus_distance_to_the_post(no_noise):
    env = _env_at(no_noise, (5.0, 13.0), (6.0, 13.0), (15.0, 0.0))
    _, reward, terminated, _, _ = env.step((0, ([40.0, 0.0], [0.0], [0.0])))
    assert terminated and not env.ball.in_field()
    assert reward == pytest.approx(-math.hypot(20.0 - env.ball.x, env.ball.y - 7.01))


def test_time_limit_after_100_steps(no_noise):
    env = _env_at(no_noise, (5.0, 0.0), (6.5, 0.0), (15.0, 0.0))
    env.time = 99
    (state, frames), reward, terminated, truncated, info = env.step((0, PARAMS))
    assert terminated and not truncated and info["time_limit"] and frames == 0
    assert reward == pytest.approx(-(20.0 - 6.5))
    assert state[10] == pytest.approx(6.5)  # nothing moved


def test_parameters_are_clipped():
    def first(value):
        env = GoalEnv()
        env.reset(seed=2)
        return env.step((1, ([0.0, 0.0], [value], [0.0])))

    a, b = first(7.01), first(50.0)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert a[1] == b[1]


def _rollout(seed):
    env = GoalEnv()
    env.action_space.seed(1)
    obs, _ = env.reset(seed=seed)
    trace = [obs[0]]
    for _ in range(30):
        obs, reward, terminated, _, _ = env.step(env.action_space.sample())
        trace.append(np.append(obs[0], reward))
        if terminated:
            obs, _ = env.reset()
    return np.concatenate(trace)


def test_same_seed_same_trajectory():
    np.testing.assert_array_equal(_rollout(3), _rollout(3))
    assert not np.array_equal(_rollout(3), _rollout(4))


@pytest.mark.parametrize("action, match", [
    ((3, PARAMS), "out of range"),
    ((0, ([1.0], [0.0], [0.0])), "Parameter 0 must have 2 value"),
    ((1, ([1.0, 1.0], [float("nan")], [0.0])), "NaN or inf"),
    ((0, PARAMS[:2]), "sequence of 3 arrays"),
])
def test_bad_actions_raise(action, match):
    env = GoalEnv()
    env.reset(seed=0)
    before = env._state().copy()
    with pytest.raises(ValueError, match=match):
        env.step(action)
    np.testing.assert_array_equal(env._state(), before)


def test_gymnasium_env_checker_and_registration():
    check_env(GoalEnv(render_mode="rgb_array"), skip_render_check=False)
    env = gym.make("rllib_ext/Goal-v0")
    assert isinstance(env.unwrapped, GoalEnv)
    assert env.spec.max_episode_steps is None  # the env's own 100-step limit applies


def test_info_flags_the_goal(no_noise):
    env = _env_at(no_noise, (17.5, 0.0), (18.5, 0.0), (15.0, 13.0))
    *_, info = env.step((1, ([0.0, 0.0], [0.0], [0.0])))
    assert info["goal"] is True
    env = _env_at(no_noise, (10.0, 0.0), (11.0, 0.0), (12.5, 0.0))
    *_, info = env.step((0, ([10.0, 0.0], [0.0], [0.0])))
    assert info["goal"] is False


def test_vector_env_steps_actions_with_parameters_of_different_sizes():
    """A gymnasium vector env batches infos by key: ``info["parameter"]`` (2 values after a
    kick, 1 after a shot) must not break it, so Goal runs with num_envs_per_env_runner > 1."""
    envs = gym.vector.SyncVectorEnv([GoalEnv, GoalEnv])
    envs.reset(seed=0)
    actions = (np.array([0, 1]), (np.array([[10.0, 0.0], [10.0, 0.0]]),
                                  np.array([[3.0], [3.0]]), np.array([[0.0], [0.0]])))
    *_, infos = envs.step(actions)
    assert list(infos["action"]) == ["kick_to", "shoot_goal_left"]
    assert list(infos["parameter"]) == [(10.0, 0.0), (3.0,)]
