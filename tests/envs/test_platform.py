"""Platform: hand-derived macro-steps from reset, termination cases, clipping, seeding, errors.

Hand derivations run with ``NoNoise`` (all Gaussian draws 0), so every number below follows
from the constants: DT = 0.05, run acceleration p/DT capped at 600, ground speed cap 70,
velocity decay 0.99, gravity 9.8 (0.49 per frame), enemy speed 30 (1.5 per frame).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rllib_ext  # noqa: F401  (registers the env ids)
from rllib_ext.envs import PlatformEnv

RUN30 = (0, ([30.0], [0.0], [0.0]))


def _env(no_noise=None, seed=0) -> PlatformEnv:
    env = PlatformEnv()
    env.reset(seed=seed)
    if no_noise is not None:
        env.np_random = no_noise
    return env


def test_spaces_match_the_original():
    env = PlatformEnv()
    k, params = env.action_space.spaces
    assert k.n == 3
    assert [(b.low[0], b.high[0], b.shape) for b in params.spaces] == [
        (0, 30, (1,)), (0, 720, (1,)), (0, 430, (1,))]
    box, frames = env.observation_space.spaces
    assert box.shape == (9,) and (box.low.min(), box.high.max()) == (0.0, 1.0)
    assert frames.n == 200


def test_exact_initial_observation():
    (state, frames), info = PlatformEnv().reset(seed=123)
    # [(x + 20) / 1055, dx / 100, enemy x / 1035, (enemy dx + 30) / 60,
    #  250 / 275, 275 / 275, 225 / 235, 0 / 1035, 0 / 1]
    expected = [20 / 1055, 0, 230 / 1035, 0, 250 / 275, 1, 225 / 235, 0, 0]
    np.testing.assert_allclose(state, expected, rtol=1e-6)
    assert state.dtype == np.float32 and frames == 0


def test_run_30_from_reset(no_noise):
    env = _env(no_noise)
    (state, frames), reward, terminated, truncated, info = env.step(RUN30)
    # Frame 1: dx = 30 -> x = 1.5, dx decays to 29.7. Frame 2: dx = 59.7 -> x += 2.985,
    # decays to 59.103. Frames 3..20: dx capped at 70 on the ground -> x += 3.5 each.
    x = 1.5 + 2.985 + 18 * 3.5
    assert frames == info["frames"] == 20  # 1.0 / DT frames
    assert env.player.x == pytest.approx(x) == pytest.approx(67.485)
    assert reward == pytest.approx(x / 1035)
    assert env.player.vx == pytest.approx(70 * 0.99)
    # Enemy 1 starts on its right edge: it flips twice (230 -> 230 -> 228.5), then walks left.
    assert env.enemies[0].x == pytest.approx(228.5 - 18 * 1.5)
    assert not terminated and not truncated
    np.testing.assert_allclose(state[:4], [(x + 20) / 1055, 0.693, 201.5 / 1035, 0], rtol=1e-6)


def test_hop_from_reset(no_noise):
    env = _env(no_noise)
    (_, frames), reward, terminated, _, _ = env.step((1, ([0.0], [720.0], [0.0])))
    # Standing still, the take-off speed is capped: dx0 = 30 (600 * DT), dy0 = 35. Height after
    # n frames: 40 + 0.05 * (35 n - 0.245 n (n - 1)), below 40 first when n - 1 > 35 / 0.245.
    n = math.floor(35 / 0.245) + 2
    assert frames == n == 144
    # x = sum of 0.05 * 30 * 0.99^j for j < n; landing snaps y back onto the platform top.
    x = 150 * (1 - 0.99**n)
    assert env.player.x == pytest.approx(x, rel=1e-9)
    assert env.player.y == 40.0 and env.player.vx == 0.0
    assert reward == pytest.approx(x / 1035)
    assert not terminated


def test_leap_from_reset_meets_the_enemy(no_noise):
    env = _env(no_noise)
    (_, frames), reward, terminated, _, _ = env.step((2, ([0.0], [0.0], [430.0])))
    # dx0 = 30, dy0 = 25. Enemy 1 is at 228.5 - 1.5 (n - 2) at frame n; the player's right
    # edge x + 20 = 150 (1 - 0.99^n) + 20 first passes it at n = 84, at a height of
    # 40 + 0.05 (25 n - 0.245 n (n - 1)) = 59.59, inside the enemy's 30-px body: game over.
    n = 84
    x = 150 * (1 - 0.99**n)
    assert frames == n
    assert terminated
    assert env.player.x == pytest.approx(x, rel=1e-9)
    assert env.player.y == pytest.approx(40 + 0.05 * (25 * n - 0.245 * n * (n - 1)), rel=1e-9)
    assert x + 20 > env.enemies[0].x
    assert reward == pytest.approx(x / 1035)


def test_falling_into_the_first_gap(no_noise):
    env = _env(no_noise)
    env.player.x = 240.0  # near the right edge of platform 1 (ends at 250)
    env.enemies[0].x = 0.0
    (_, frames), reward, terminated, _, _ = env.step(RUN30)
    assert terminated
    assert env.player.y < 40.0 and env.player.x > 250.0
    assert reward == pytest.approx((env.player.x - 240.0) / 1035)
    assert frames < 20


def test_touching_an_enemy(no_noise):
    env = _env(no_noise)
    env.enemies[0].x = 30.0  # just ahead of the player
    _, _, terminated, _, info = env.step(RUN30)
    assert terminated and info["frames"] < 20


def test_reaching_the_goal_pays_the_rest_of_the_way(no_noise):
    env = _env(no_noise)
    env.player.x = 1000.0  # on platform 3 (985..1035)
    _, reward, terminated, _, _ = env.step(RUN30)
    assert terminated
    assert env.player.x == 1035.0
    assert reward == pytest.approx((1035 - 1000) / 1035)


@pytest.mark.parametrize("k, high, too_high, too_low", [(0, 30, 1e6, -5), (1, 720, 1e4, -1),
                                                        (2, 430, 999, -100)])
def test_parameters_are_clipped(k, high, too_high, too_low):
    def first_step(value):
        env = PlatformEnv()
        env.reset(seed=7)
        params = [[0.0], [0.0], [0.0]]
        params[k] = [value]
        return env.step((k, params))

    for clipped, raw in ((high, too_high), (0.0, too_low)):
        a, b = first_step(clipped), first_step(raw)
        np.testing.assert_array_equal(a[0][0], b[0][0])
        assert a[1] == b[1] and a[4]["parameter"] == b[4]["parameter"] == clipped


def test_only_the_chosen_parameter_matters():
    a, b = PlatformEnv(), PlatformEnv()
    a.reset(seed=3)
    b.reset(seed=3)
    ra = a.step((0, ([20.0], [0.0], [0.0])))
    rb = b.step((0, ([20.0], [500.0], [100.0])))
    np.testing.assert_array_equal(ra[0][0], rb[0][0])


def _rollout(seed, actions_seed=0, steps=50):
    env = PlatformEnv()
    env.action_space.seed(actions_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs[0]]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace.append(np.append(obs[0], reward))
        if terminated:
            obs, _ = env.reset()
    return np.concatenate(trace)


def test_same_seed_same_trajectory():
    np.testing.assert_array_equal(_rollout(5), _rollout(5))
    assert not np.array_equal(_rollout(5), _rollout(6))


def test_episode_return_is_at_most_one():
    env = PlatformEnv()
    env.action_space.seed(0)
    for episode in range(30):
        env.reset(seed=episode)
        total, terminated, steps = 0.0, False, 0
        while not terminated and steps < 200:
            _, reward, terminated, _, _ = env.step(env.action_space.sample())
            total += reward
            steps += 1
        assert total <= 1.0 + 1e-9


@pytest.mark.parametrize(
    "action, match",
    [
        ((3, ([1.0], [1.0], [1.0])), "out of range"),
        ((-1, ([1.0], [1.0], [1.0])), "out of range"),
        ((0.5, ([1.0], [1.0], [1.0])), "must be an integer"),
        ((True, ([1.0], [1.0], [1.0])), "must be an integer"),
        ((0, [1.0, 2.0, 3.0, 4.0]), "sequence of 3 arrays"),
        ((0, ([1.0], [1.0])), "sequence of 3 arrays"),
        ((0, ([1.0, 2.0], [1.0], [1.0])), "Parameter 0 must have 1 value"),
        ((0, ([float("nan")], [1.0], [1.0])), "NaN or inf"),
        ((1, ([1.0], [float("inf")], [1.0])), "NaN or inf"),
        ((0, (["fast"], [1.0], [1.0])), "not numeric"),
        ([0], "must be a pair"),
        ("run", "must be a pair"),
    ],
)
def test_bad_actions_raise_and_leave_the_state_untouched(action, match):
    env = _env()
    before = (env.player.x, env.player.vx, env.enemies[0].x)
    with pytest.raises(ValueError, match=match):
        env.step(action)
    assert (env.player.x, env.player.vx, env.enemies[0].x) == before


def test_gymnasium_env_checker_and_registration():
    check_env(PlatformEnv(render_mode="rgb_array"), skip_render_check=False)
    env = gym.make("rllib_ext/Platform-v0")
    assert isinstance(env.unwrapped, PlatformEnv)
    assert env.spec.max_episode_steps == 200
