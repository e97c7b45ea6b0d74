"""Complete-episode sampling keeps every episode it finishes (rllib_ext/core/whole_episodes.py):
one call returns the env runner's share of the batch, in complete episodes that all started in
that call; explicit requests and truncate mode are RLlib's."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.env.multi_agent_env import make_multi_agent
from ray.rllib.utils.metrics import (
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED,
)

from rllib_ext import PGConfig
from rllib_ext.core.non_finite import GuardedEnvRunner, GuardedMultiAgentEnvRunner

BATCH, ENVS = 300, 4


def _config(batch_mode="complete_episodes"):
    return (PGConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=ENVS, batch_mode=batch_mode)
            .training(train_batch_size_per_learner=BATCH)
            .rl_module(model_config={"fcnet_hiddens": [8]})
            .debugging(seed=0))


def _check_episode(episode) -> None:
    episode.validate()
    assert episode.is_done and episode.t_started == 0
    # CartPole pays 1 per step: a chunk lost or counted twice shows in the sum.
    np.testing.assert_array_equal(episode.get_rewards(), np.ones(len(episode)))
    assert len(episode.get_observations()) == len(episode) + 1


def test_one_call_returns_the_share_of_the_batch_in_fresh_complete_episodes():
    runner = GuardedEnvRunner(config=_config())
    try:
        seen = set()
        for _ in range(2):
            episodes = runner.sample()
            for episode in episodes:
                _check_episode(episode)
            steps = sum(len(e) for e in episodes)
            # RLlib's own mode returns ENVS episodes per call (CartPole's first episodes last
            # ~20 steps): far below the batch.
            assert steps >= BATCH and len(episodes) > ENVS
            # Sampled but not returned: only the ENVS episodes running when the batch was full.
            metrics = runner.get_metrics()
            sampled = metrics[NUM_ENV_STEPS_SAMPLED]
            # The env runner's own return metric sums each episode's chunks: joining them must
            # leave the chunks it holds as they were (CartPole: return = length).
            lengths = [len(e) for e in episodes]
            assert float(metrics[EPISODE_RETURN_MAX]) == max(lengths)
            assert float(metrics[EPISODE_RETURN_MEAN]) == pytest.approx(np.mean(lengths))
            assert 0 <= sampled - steps < ENVS * max(len(e) for e in episodes) * 2
            ids = {e.id_ for e in episodes}
            assert len(ids) == len(episodes) and not ids & seen  # none continued from before
            seen |= ids
    finally:
        runner.stop()


def test_explicit_requests_and_truncate_mode_are_rllibs():
    runner = GuardedEnvRunner(config=_config())
    try:
        episodes = runner.sample(num_episodes=2)
        assert len(episodes) == 2 and all(e.is_done for e in episodes)
    finally:
        runner.stop()
    runner = GuardedEnvRunner(config=_config("truncate_episodes").env_runners(
        rollout_fragment_length=10))
    try:
        episodes = runner.sample()
        assert sum(len(e) for e in episodes) == 10 * ENVS  # one fragment per sub-env
    finally:
        runner.stop()


def test_multi_agent_complete_episodes():
    config = (_config().environment(make_multi_agent("CartPole-v1"),
                                    env_config={"num_agents": 2})
              .multi_agent(policies={"p0", "p1"},
                           policy_mapping_fn=lambda agent_id, episode, **kw: f"p{agent_id}"))
    runner = GuardedMultiAgentEnvRunner(config=config)
    try:
        episodes = runner.sample()
        assert all(e.is_done and e.env_t_started == 0 for e in episodes)
        assert sum(e.env_steps() for e in episodes) >= BATCH and len(episodes) > ENVS
        for episode in episodes:
            episode.validate()
    finally:
        runner.stop()

