"""Platform race: the rules of the two-player multi-agent env, and MP-DQN training on it."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from rllib_ext.envs.platform_race import PLAYERS, WIN_BONUS, PlatformRaceEnv

P0, P1 = PLAYERS


def _act(k: int, value: float):
    """A flat agent-view action: discrete k with its parameter ``value`` in [-1, 1]."""
    params = [np.zeros(1, np.float32) for _ in range(3)]
    params[k] = np.array([value], np.float32)
    return (k, *params)


RUN, LEAP = _act(0, 1.0), _act(2, 1.0)


def test_passes_rllibs_multi_agent_checks_and_starts_both_lanes_alike():
    env = PlatformRaceEnv()
    check_multiagent_environments(env)
    obs, _ = env.reset(seed=3)
    assert set(obs) == set(PLAYERS) and obs[P0].shape == (11,)
    np.testing.assert_array_equal(obs[P0], obs[P1])  # the same level, the same start
    assert obs[P0][-2] == -1.0 and obs[P0][-1] == 1.0  # opponent at x = 0, racing


def test_the_opponent_is_observed_and_a_player_who_is_out_leaves_the_race():
    env = PlatformRaceEnv()
    env.reset(seed=0)
    obs, rewards, terminateds, truncateds, infos = env.step({P0: RUN, P1: RUN})
    assert rewards[P0] > 0 and obs[P1][-2] > -1.0  # player 1 sees player 0's progress
    # Player 1 touches its lane's enemy: out, while player 0 races on.
    lane = env.lanes[P1].unwrapped
    lane.enemies[0].x, lane.enemies[0].dx = lane.player.x, 0.0
    obs, rewards, terminateds, truncateds, infos = env.step({P0: RUN, P1: RUN})
    assert terminateds[P1] and not terminateds[P0] and not terminateds["__all__"]
    assert not infos[P1]["winner"]
    assert env.racing == [P0]
    assert obs[P0][-1] == -1.0  # the opponent is no longer racing
    obs, rewards, terminateds, truncateds, infos = env.step({P0: RUN})
    assert set(obs) == {P0}
    env.reset(seed=0)
    with pytest.raises(ValueError, match="player_1 is still racing but has no action"):
        env.step({P0: RUN})


def test_the_first_to_finish_wins_the_bonus_and_ends_the_race():
    env = PlatformRaceEnv()
    env.reset(seed=0)
    # Put player 0 at the last platform's end: its next run crosses the finish line.
    lane = env.lanes[P0].unwrapped
    lane.player.x, lane.player.y = lane.right_bound - 5.0, lane.platforms[2].h + lane.platforms[
        2].y
    lane.enemies[0].x = lane.enemies[1].x = 0.0
    obs, rewards, terminateds, truncateds, infos = env.step({P0: RUN, P1: RUN})
    assert terminateds == {P0: True, P1: True, "__all__": True}
    assert infos[P0]["winner"] and not infos[P1]["winner"]
    assert rewards[P0] == pytest.approx(WIN_BONUS + 5.0 / lane.right_bound, abs=0.02)
    assert rewards[P1] < WIN_BONUS
    assert env.racing == []


def test_mpdqn_trains_two_policies_on_the_race(ray_session):
    from rllib_ext import PDQNConfig

    config = (
        PDQNConfig()
        .environment("rllib_ext/PlatformRace-v0")
        .multi_agent(policies=set(PLAYERS),
                     policy_mapping_fn=lambda agent_id, episode, **kwargs: agent_id)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  replay_capacity=500, q_hiddens=[8], param_hiddens=[8])
        .reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert set(PLAYERS) <= set(result["learners"])
        assert len(algo.replay[P0]) > 0 and len(algo.replay[P1]) > 0
    finally:
        algo.stop()
