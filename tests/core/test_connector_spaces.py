"""Algorithms see the observation space the env-to-module connectors produce, as RLlib's
built-ins do: a Dict observation is refused with the connector that fixes it, and trains once
RLlib's ``FlattenObservations`` is in the pipeline; ``MeanStdFilter`` state survives a
checkpoint round trip."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.env_to_module import FlattenObservations, MeanStdFilter
from ray.rllib.core import COMPONENT_ENV_TO_MODULE_CONNECTOR
from ray.rllib.core.columns import Columns

from rllib_ext import PGConfig
from rllib_ext.core.spaces import module_spaces
from tests.helpers.tiny_configs import tiny_ace, tiny_paddpg, tiny_pdqn
from tests.helpers.toy_env import DictObservations, ToyHybridEnv

HYBRID_DICT = "connector_test/ToyHybridDict"
REACH_DICT = "connector_test/CausalReach2Dict"
CARTPOLE_DICT = "connector_test/CartPoleDict"
#: ToyHybridEnv: actions 0 and 2 own one parameter each.
LAYOUT = [1, 0, 1]


def _flatten(env, spaces, device):
    return FlattenObservations()


@pytest.fixture(scope="module", autouse=True)
def dict_envs(ray_session):
    from ray.tune.registry import register_env

    from rllib_ext.envs.causal_reach import CausalReachEnv

    register_env(HYBRID_DICT, lambda cfg: DictObservations(ToyHybridEnv()))
    register_env(REACH_DICT, lambda cfg: DictObservations(
        CausalReachEnv(influence=[1.0, 0.0], max_steps=20)))
    register_env(CARTPOLE_DICT, lambda cfg: DictObservations(gym.make("CartPole-v1")))


class AppendOne(ConnectorV2):
    """A user connector that changes the space: appends a constant feature to a Box obs."""

    def recompute_output_observation_space(self, input_observation_space,
                                           input_action_space):
        low = np.append(input_observation_space.low, 1.0).astype(np.float32)
        high = np.append(input_observation_space.high, 1.0).astype(np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    def __call__(self, *, rl_module, batch, episodes, **kwargs):
        for sa_episode in self.single_agent_episode_iterator(episodes,
                                                             agents_that_stepped_only=True):
            obs = np.append(sa_episode.get_observations(-1), 1.0).astype(np.float32)
            sa_episode.set_observations(at_indices=-1, new_data=obs)
            sa_episode.observation_space = self.observation_space
        return batch


# -- the spaces ----------------------------------------------------------------------------------


def test_module_spaces_follow_the_env_to_module_pipeline():
    config = tiny_pdqn(env=HYBRID_DICT, param_layout=LAYOUT)
    assert module_spaces(config)[0] == DictObservations(ToyHybridEnv()).observation_space
    config.env_runners(env_to_module_connector=_flatten)
    obs, act = module_spaces(config)
    # 3 features + one-hot(2) of the phase; the action space is the env's.
    assert obs.shape == (5,) and act == ToyHybridEnv.action_space
    appended = tiny_pdqn(env=(ToyHybridEnv, {}), param_layout=LAYOUT).env_runners(
        env_to_module_connector=lambda env, spaces, device: [AppendOne()])
    assert module_spaces(appended)[0].shape == (4,)


# -- refused without the connector, with the fix named -------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: tiny_pdqn(env=HYBRID_DICT, param_layout=LAYOUT),
    lambda: tiny_paddpg(env=HYBRID_DICT, param_layout=LAYOUT),
    lambda: tiny_ace().environment(REACH_DICT),
    lambda: PGConfig().environment(CARTPOLE_DICT).training(baseline="value"),
], ids=["pdqn", "paddpg", "ace", "pg-value-baseline"])
def test_dict_observations_are_refused_with_the_connector_that_fixes_them(make):
    with pytest.raises(ValueError, match=r"needs a 1-D Box observation space .*got Dict.*"
                                         r"env_to_module_connector=.*FlattenObservations\(\)"):
        make().validate()
    make().env_runners(env_to_module_connector=_flatten).validate()


# -- trained through the connector ---------------------------------------------------------------


def _reach_obs_dim() -> int:
    from rllib_ext.envs.causal_reach import CausalReachEnv

    return CausalReachEnv(influence=[1.0, 0.0]).observation_space.shape[0] + 2


@pytest.mark.parametrize("make, obs_dim", [
    (lambda: tiny_pdqn(env=HYBRID_DICT, variant="mpdqn", param_layout=LAYOUT), lambda: 5),
    (lambda: tiny_paddpg(env=HYBRID_DICT, param_layout=LAYOUT), lambda: 5),
    (lambda: tiny_ace().environment(REACH_DICT), _reach_obs_dim),
    (lambda: PGConfig().environment(CARTPOLE_DICT).training(
        baseline="value", train_batch_size_per_learner=64).rl_module(
        model_config={"fcnet_hiddens": [8]}), lambda: 6),
], ids=["mpdqn", "paddpg", "ace", "pg-value-baseline"])
def test_each_algorithm_trains_on_flattened_dict_observations(make, obs_dim):
    obs_dim = obs_dim()
    algo = make().env_runners(env_to_module_connector=_flatten, num_env_runners=0).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] > 0
        module = algo.get_module()
        assert module.observation_space.shape == (obs_dim,)
        replay = getattr(algo, "replay", None)
        if replay is not None:  # the off-policy algorithms store post-connector observations
            stored = replay.sample(4)
            assert stored[Columns.OBS].shape == (4, obs_dim)
            assert stored[Columns.NEXT_OBS].shape == (4, obs_dim)
            # The phase's one-hot columns hold 0/1 only: the connector's output, not raw data.
            assert set(np.unique(stored[Columns.OBS][:, -2:])) <= {0.0, 1.0}
    finally:
        algo.stop()


# -- MeanStdFilter: its state is checkpointed and restored ---------------------------------------


def _filter_state(algo) -> dict:
    state = algo.env_runner.get_state()[COMPONENT_ENV_TO_MODULE_CONNECTOR]
    (filter_state,) = [v for k, v in state.items() if "MeanStdFilter" in k]
    return filter_state


def test_mean_std_filter_state_round_trips_through_a_checkpoint(tmp_path):
    def config():
        return tiny_pdqn(env=(ToyHybridEnv, {}), param_layout=LAYOUT).env_runners(
            env_to_module_connector=lambda env, spaces, device: MeanStdFilter())

    algo = config().build_algo()
    try:
        algo.train()
        before = _filter_state(algo)
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    restored = config().build_algo()
    try:
        fresh = _filter_state(restored)
        restored.restore_from_path(tmp_path / "ckpt")
        after = _filter_state(restored)
    finally:
        restored.stop()
    assert str(fresh) != str(before)  # the filter had seen data: a real round trip
    assert str(after) == str(before)
