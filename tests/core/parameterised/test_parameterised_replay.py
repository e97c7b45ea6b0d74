"""The flat transition replay and the ε schedule."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.parameterised_learner import (
    ACTION_INDEX,
    ACTION_PARAMS,
    exponential_epsilon,
    linear_epsilon,
    scheduled_epsilon,
)
from rllib_ext.core.parameterised.parameterised_replay import ParameterisedReplay

BOX1 = spaces.Box(-1, 1, (1,))
BOX2 = spaces.Box(-1, 1, (2,))


def test_linear_epsilon_schedule():
    assert linear_epsilon(0, initial=1.0, final=0.01, duration=1000) == 1.0
    assert linear_epsilon(500, initial=1.0, final=0.01, duration=1000) == pytest.approx(0.505)
    assert linear_epsilon(5000, initial=1.0, final=0.01, duration=1000) == 0.01


def test_exponential_epsilon_schedule_is_di_engines():
    # DI-engine's gym-hybrid MP-DQN: 0.1 + 0.9 exp(-t / 1e5).
    def eps(t):
        return exponential_epsilon(t, initial=1.0, final=0.1, duration=100_000)

    assert eps(0) == 1.0
    assert eps(100_000) == pytest.approx(0.1 + 0.9 / np.e)  # 0.4311
    assert eps(300_000) == pytest.approx(0.14481, abs=1e-5)
    assert exponential_epsilon(5, initial=1.0, final=0.1, duration=0) == 0.1


def test_scheduled_epsilon_follows_the_configs_schedule_and_unit():
    from rllib_ext import PDQNConfig

    config = PDQNConfig().training(epsilon_initial=1.0, epsilon_final=0.1,
                                   epsilon_decay_duration=1000, epsilon_decay_unit="step")
    counts = {"num_env_steps_sampled_lifetime": 500, "num_episodes_lifetime": 7}
    assert scheduled_epsilon(config, counts) == pytest.approx(0.55)  # linear, by steps
    config.training(epsilon_schedule="exponential")
    assert scheduled_epsilon(config, counts) == pytest.approx(0.1 + 0.9 * np.exp(-0.5))
    config.training(epsilon_decay_unit="episode")
    assert scheduled_epsilon(config, counts) == pytest.approx(0.1 + 0.9 * np.exp(-0.007))


def test_replay_stores_all_parameters_and_terminal_only_at_the_end():
    space = spaces.Tuple((spaces.Discrete(3), BOX1, BOX2, BOX1))
    layout = layout_from_space(space)
    actions = [(k, np.float32([k]), np.float32([k, -k]), np.float32([9])) for k in (0, 2)]
    ep = SingleAgentEpisode(
        observations=[np.full(2, i, np.float32) for i in range(3)], actions=actions,
        rewards=[1.0, 2.0], terminated=True, len_lookback_buffer=0,
        observation_space=spaces.Box(-9, 9, (2,)), action_space=space,
    ).to_numpy()
    replay = ParameterisedReplay(10, 2, layout, seed=0)
    assert replay.add_episodes([ep]) == 2
    cols = replay.columns
    np.testing.assert_array_equal(cols[ACTION_PARAMS][:2], [[0, 0, 0, 9], [2, 2, -2, 9]])
    np.testing.assert_array_equal(cols[ACTION_INDEX][:2], [0, 2])
    np.testing.assert_array_equal(cols[Columns.OBS][:2, 0], [0, 1])
    np.testing.assert_array_equal(cols[Columns.NEXT_OBS][:2, 0], [1, 2])
    np.testing.assert_array_equal(cols[Columns.TERMINATEDS][:2], [0, 1])
    batch = replay.sample(64)
    assert batch[ACTION_PARAMS].shape == (64, 4) and set(batch[ACTION_INDEX]) <= {0, 2}


def test_replay_ring_wraps():
    replay = ParameterisedReplay(3, 1, layout_from_space(spaces.Tuple((spaces.Discrete(1), BOX1))),
                                 seed=0)
    for i in range(5):
        replay.add(**{Columns.OBS: [[i]], Columns.NEXT_OBS: [[i]], ACTION_INDEX: [i],
                      ACTION_PARAMS: [[i]], Columns.REWARDS: [i], Columns.TERMINATEDS: [0]})
    assert len(replay) == 3
    assert sorted(replay.columns[Columns.REWARDS]) == [2, 3, 4]
