"""Agent-side wrappers: scaling, Goal's extra features, the action round trip, RLlib creation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from rllib_ext.envs import GoalEnv, GoalFeatures, PlatformEnv, make
from rllib_ext.envs.wrappers import make_from_env_config


@pytest.mark.parametrize("env_id", ["rllib_ext/Platform-v0", "rllib_ext/Goal-v0"])
@pytest.mark.parametrize("flat", [True, False])
def test_env_checker_on_wrapped_forms(env_id, flat):
    env = make(env_id, scale=True, flat_actions=flat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the env is wrapped" and out-of-bound notices
        check_env(env)
    boxes = env.action_space.spaces[1:] if flat else env.action_space.spaces[1].spaces
    assert all(isinstance(b, spaces.Box) and b.low.min() == -1 and b.high.max() == 1
               for b in boxes)
    assert env.observation_space.shape == ((9,) if "Platform" in env_id else (17,))


def test_platform_observation_is_2s_minus_1():
    raw, scaled = PlatformEnv(), make("rllib_ext/Platform-v0", scale=True)
    (state, _), _ = raw.reset(seed=1)
    obs, _ = scaled.reset(seed=1)
    np.testing.assert_allclose(obs, 2 * state - 1, atol=1e-6)


def test_goal_extra_features_by_hand():
    state = np.zeros(14, np.float32)
    state[5:7] = (15.0, 2.0)   # keeper
    state[10:12] = (10.0, 0.0)  # ball
    ux, uy, projection = GoalFeatures.features(state)
    # Unit vector ball - keeper = (-5, -2) / sqrt(29). Keeper-ball line: slope 0.4,
    # intercept -4, so at the goal line (x = 20) y = 4.
    assert (ux, uy) == pytest.approx((-5 / math.sqrt(29), -2 / math.sqrt(29)))
    assert projection == pytest.approx(4.0)
    state[6] = 5.0  # slope 1, intercept -10: y(20) = 10 -> kept (upper bound 14.02, original)
    assert GoalFeatures.features(state)[2] == pytest.approx(10.0)
    state[6] = -3.6  # slope -0.72, intercept 7.2: y(20) = -7.2 -> clipped to -7.01
    assert GoalFeatures.features(state)[2] == pytest.approx(-7.01)
    state[5] = 10.0  # keeper straight above/below the ball: the original's convention
    assert GoalFeatures.features(state)[2] == pytest.approx(-7.01)


def test_goal_scaled_observation_uses_the_17_declared_bounds():
    raw = GoalFeatures(make("rllib_ext/Goal-v0"))
    scaled = make("rllib_ext/Goal-v0", scale=True)
    (state, _), _ = raw.reset(seed=5)
    obs, _ = scaled.reset(seed=5)
    box = raw.observation_space.spaces[0]
    np.testing.assert_allclose(obs, 2 * (state - box.low) / (box.high - box.low) - 1, atol=1e-5)
    assert box.low[16] == pytest.approx(-7.01) and box.high[16] == pytest.approx(14.02)


@pytest.mark.parametrize("env_id, action, original", [
    ("rllib_ext/Platform-v0", (1, [0.0], [0.5], [-1.0]), (1, ([15.0], [540.0], [0.0]))),
    ("rllib_ext/Goal-v0", (0, [0.5, -1.0], [0.0], [1.0]), (0, ([30.0, -15.0], [0.0], [7.01]))),
])
@pytest.mark.parametrize("flat", [True, False])
def test_scaled_action_round_trip(env_id, action, original, flat):
    scaled = make(env_id, scale=True, flat_actions=flat)
    raw = make(env_id)
    scaled.reset(seed=9)
    raw.reset(seed=9)
    agent_action = action if flat else (action[0], tuple(action[1:]))
    k, mapped = scaled.action(agent_action)
    assert k == original[0]
    for m, o in zip(mapped, original[1], strict=True):
        np.testing.assert_allclose(m, o, rtol=1e-6)
    # Same behaviour as the raw env given the original units.
    scaled_obs, scaled_r, *_ = scaled.step(agent_action)
    raw_obs, raw_r, *_ = raw.step(original)
    assert scaled_r == raw_r
    assert scaled.unwrapped._state().tolist() == raw.unwrapped._state().tolist()
    # And back: original units -> agent values.
    back = scaled.to_agent(mapped)
    np.testing.assert_allclose(np.concatenate(back), np.concatenate(action[1:]), atol=1e-6)


@pytest.mark.parametrize("flat, action, match", [
    (True, (0, [0.0], [0.0]), r"Expected \(k, p_1, ..., p_3\)"),
    (False, (0, [0.0], [0.0], [0.0]), r"Expected \(k, \(p_1, ..., p_3\)\)"),
    (True, (0, [0.0, 1.0], [0.0], [0.0]), "Bad action parameters"),
    (True, (0, [float("nan")], [0.0], [0.0]), "NaN or inf"),
    (True, (5, [0.0], [0.0], [0.0]), "out of range"),
])
def test_wrapped_bad_actions_raise(flat, action, match):
    env = make("rllib_ext/Platform-v0", scale=True, flat_actions=flat)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_rllib_env_config_creates_the_wrapped_env():
    env = make_from_env_config("rllib_ext/Goal-v0", {"scale": True, "flat_actions": False})
    assert isinstance(env.unwrapped, GoalEnv)
    assert env.observation_space.shape == (17,)
    assert isinstance(env.action_space.spaces[1], spaces.Tuple)
    with pytest.raises(ValueError, match=r"Unknown env_config key\(s\) \['scaled'\]"):
        make_from_env_config("rllib_ext/Goal-v0", {"scaled": True})
    with pytest.raises(ValueError, match="must be true/false"):
        make_from_env_config("rllib_ext/Goal-v0", {"scale": "yes"})


def test_env_config_passes_constructor_arguments_through():
    env = make_from_env_config("rllib_ext/CausalReach-v0", {"influence": [1, 0, 0, 0, 0, 0]})
    np.testing.assert_array_equal(env.unwrapped.influence, [1, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"\['influnce'\].*'influence'"):
        make_from_env_config("rllib_ext/CausalReach-v0", {"influnce": [1, 0, 0, 0, 0, 0]})
