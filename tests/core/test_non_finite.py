"""Non-finite env data is dropped (or raises) on the env runners, and non-finite gradient steps
are skipped in the learners, for every algorithm."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics import ALL_MODULES
from ray.tune.registry import register_env

from rllib_ext import ACEConfig, HPPOConfig, PADDPGConfig, PDQNConfig, PGConfig
from rllib_ext.core.non_finite import (
    DROPPED_STEP_INFO_KEY,
    NON_FINITE_ENV_STEPS_KEY,
    NON_FINITE_GRADIENT_STEPS_KEY,
    NonFiniteEnvDataError,
    NonFiniteGuard,
    first_non_finite,
    without_dropped_step,
)

BAD_ENV = "rllib_ext_test/NonFinite-v0"


class InjectNonFinite(gym.Wrapper):
    """Every ``every``-th step (counted over the env's life) returns NaN in ``field``."""

    def __init__(self, env, every: int, field: str):
        super().__init__(env)
        self.every, self.field, self.count = every, field, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.count % self.every == 0:
            if self.field == "observation":
                obs = np.array(obs, dtype=np.float32)
                obs[0] = np.nan
            else:
                reward = float("nan")
        return obs, reward, terminated, truncated, info


def _bad_env(config):
    from rllib_ext.envs.wrappers import make_from_env_config

    return InjectNonFinite(make_from_env_config(config["base"], config.get("base_config", {})),
                           config.get("every", 7), config["field"])


class _Counter(gym.Env):
    """Observation = [t]; reward t; NaN in ``field`` at step ``bad_at``."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, bad_at=3, field="reward"):
        self.bad_at, self.field = bad_at, field

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        obs, reward = np.array([self.t], np.float32), float(self.t)
        if self.t == self.bad_at:
            if self.field == "reward":
                reward = float("inf")
            else:
                obs[0] = np.nan
        return obs, reward, False, False, {}


# -- the wrapper and the episode cut ------------------------------------------------------------


def test_first_non_finite_names_the_leaf():
    assert first_non_finite(np.array([1.0, 2.0]), "observation") is None
    assert first_non_finite(np.array([0, 1]), "observation") is None  # ints are always finite
    field, value = first_non_finite(np.array([[1.0, 2.0], [np.inf, 0.0]]), "observation")
    assert field == "observation[1, 0]" and value == np.inf
    assert first_non_finite({"a": (1.0, [np.nan])}, "observation")[0] == "observation['a'][1][0]"
    assert first_non_finite(float("nan"), "reward")[0] == "reward"


@pytest.mark.parametrize("field", ["reward", "observation"])
def test_guard_drops_the_step_and_ends_the_episode(field, caplog):
    env = NonFiniteGuard(_Counter(3, field), "drop", "counter")
    env.reset()
    for t in (1, 2):
        obs, reward, _, truncated, info = env.step(0)
        assert obs[0] == t and reward == t and not truncated and not info
    with caplog.at_level("WARNING"):
        obs, reward, terminated, truncated, info = env.step(0)
    # The placeholder: the last finite observation, no reward, truncated, flagged.
    assert obs[0] == 2 and reward == 0.0 and not terminated and truncated
    assert info[DROPPED_STEP_INFO_KEY] and env.num_dropped == 1
    assert f"returned {field}" in caplog.text and "counter" in caplog.text


def test_guard_raise_mode_names_env_field_and_step():
    env = NonFiniteGuard(_Counter(3, "observation"), "raise", "counter")
    env.reset()
    env.step(0), env.step(0)
    with pytest.raises(NonFiniteEnvDataError,
                       match=r"Env 'counter' returned observation\[0\]=nan at step 3.*"
                             r"non_finite_env_data='drop'"):
        env.step(0)


def test_non_finite_reset_always_raises():
    class BadReset(_Counter):
        def reset(self, *, seed=None, options=None):
            return np.array([np.nan], np.float32), {}

    with pytest.raises(NonFiniteEnvDataError, match="at reset"):
        NonFiniteGuard(BadReset(), "drop").reset()


def _episode(steps: int, dropped: bool) -> SingleAgentEpisode:
    episode = SingleAgentEpisode(observations=[np.zeros(1, np.float32)], infos=[{}])
    for t in range(1, steps + 1):
        last = t == steps
        episode.add_env_step(np.array([t], np.float32), 0, float(t),
                             infos={DROPPED_STEP_INFO_KEY: True} if last and dropped else {},
                             truncated=last)
    return episode


def test_the_placeholder_step_is_cut_off():
    kept = without_dropped_step(_episode(3, dropped=True))
    assert len(kept) == 2 and kept.is_truncated and not kept.is_terminated
    assert list(kept.get_rewards()) == [1.0, 2.0]
    assert [float(o[0]) for o in kept.get_observations()] == [0.0, 1.0, 2.0]
    assert without_dropped_step(_episode(1, dropped=True)) is None
    untouched = _episode(3, dropped=False)
    assert without_dropped_step(untouched) is untouched


# -- every algorithm: nothing non-finite is stored or learned from ------------------------------


def _pg(env_config):
    return (PGConfig().environment(BAD_ENV, env_config=env_config)
            .training(train_batch_size_per_learner=200)
            .rl_module(model_config={"fcnet_hiddens": [8]}))


def _pdqn(env_config):
    return (PDQNConfig().environment(BAD_ENV, env_config=env_config)
            .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                      q_hiddens=[8], param_hiddens=[8], replay_capacity=500)
            .reporting(min_sample_timesteps_per_iteration=64))


def _paddpg(env_config):
    return (PADDPGConfig().environment(BAD_ENV, env_config=env_config)
            .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                      actor_hiddens=[8], critic_hiddens=[8], replay_capacity=500)
            .reporting(min_sample_timesteps_per_iteration=64))


def _ace(env_config):
    return (ACEConfig().environment(BAD_ENV, env_config=env_config)
            .env_runners(rollout_fragment_length=10)
            .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                      causal_sample_size=40, causal_update_interval=0, reset_interval=0,
                      replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer",
                                            "capacity": 2000, "alpha": 0.6, "beta": 0.4})
            .rl_module(model_config={"fcnet_hiddens": [8]})
            .reporting(min_sample_timesteps_per_iteration=40))


PLATFORM = {"base": "rllib_ext/Platform-v0", "base_config": {"scale": True}}
CASES = [
    (_pg, {"base": "CartPole-v1"}, "observation"),
    (_pg, {"base": "Pendulum-v1"}, "reward"),
    (_pdqn, PLATFORM, "reward"),
    (_pdqn, PLATFORM, "observation"),
    (_paddpg, PLATFORM, "reward"),
    (_paddpg, PLATFORM, "observation"),
    (_ace, {"base": "Pendulum-v1"}, "reward"),
    (_ace, {"base": "Pendulum-v1"}, "observation"),
]


def _learner_weights_finite(algo) -> bool:
    weights = algo.learner_group.get_weights()
    return all(np.isfinite(np.asarray(w)).all() for module in weights.values()
               for w in module.values())


@pytest.mark.parametrize("make, base, field", CASES,
                         ids=[f"{m.__name__[1:]}-{b['base']}-{f}" for m, b, f in CASES])
def test_non_finite_steps_are_dropped_and_counted(ray_session, make, base, field):
    register_env(BAD_ENV, _bad_env)
    config = make({**base, "field": field, "every": 7}).env_runners(
        num_env_runners=0).reporting(min_time_s_per_iteration=0).debugging(seed=0)
    algo = config.build_algo()
    try:
        for _ in range(3):
            result = algo.train()
        dropped = result["env_runners"][NON_FINITE_ENV_STEPS_KEY]
        steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert dropped >= 1 and dropped <= steps // 7 + 1
        assert np.isfinite(result["env_runners"]["episode_return_mean"])
        replay = getattr(algo, "replay", None)
        if replay is not None:  # off-policy: every stored column is finite
            assert len(replay) > 0
            for key, column in replay.columns.items():
                assert np.isfinite(column[:len(replay)]).all(), key
        assert _learner_weights_finite(algo)
        assert NON_FINITE_GRADIENT_STEPS_KEY not in result["learners"].get(ALL_MODULES, {})
    finally:
        algo.stop()


def test_raise_mode_stops_training_with_the_env_and_field(ray_session):
    register_env(BAD_ENV, _bad_env)
    algo = _pg({"base": "CartPole-v1", "field": "reward", "every": 5}).env_runners(
        num_env_runners=0, non_finite_env_data="raise").build_algo()
    try:
        with pytest.raises(Exception, match=r"Env 'rllib_ext_test/NonFinite-v0' returned "
                                            r"reward=nan at step \d+"):
            algo.train()
    finally:
        algo.stop()


def test_a_non_finite_gradient_step_is_skipped_and_counted(ray_session):
    register_env(BAD_ENV, _bad_env)
    algo = _pdqn({**PLATFORM, "field": "reward", "every": 10**9}).env_runners(
        num_env_runners=0).build_algo()
    try:
        learner = algo.learner_group._learner
        before = {k: v.clone() for k, v in learner._params.items()}
        grads = {pid: torch.full_like(p, float("nan")) for pid, p in learner._params.items()}
        learner.apply_gradients(grads)
        assert all(torch.equal(before[k], p) for k, p in learner._params.items())
        assert learner.metrics.peek((ALL_MODULES, NON_FINITE_GRADIENT_STEPS_KEY)) == 1
        # Finite gradients still step.
        learner.apply_gradients({pid: torch.ones_like(p) for pid, p in learner._params.items()})
        assert not all(torch.equal(before[k], p) for k, p in learner._params.items()
                       if p.requires_grad)
    finally:
        algo.stop()


def test_env_runner_class_must_keep_the_guard():
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    with pytest.raises(ValueError, match="subclass rllib_ext.core.non_finite."
                                         "GuardedEnvRunner"):
        PGConfig().env_runners(env_runner_cls=SingleAgentEnvRunner).validate()
    with pytest.raises(ValueError, match=r"non_finite_env_data='skip' must be one of"):
        PGConfig().env_runners(non_finite_env_data="skip").validate()


@pytest.mark.parametrize("config_class", [PDQNConfig, PADDPGConfig, ACEConfig, PGConfig,
                                          HPPOConfig])
def test_rllibs_repeat_gradient_checks_are_off_exactly_where_the_learner_checks(config_class):
    """A learner that skips non-finite steps itself (one fused check) runs with RLlib's
    ``torch_skip_nan_gradients=True``, so RLlib's per-tensor checks do not repeat it; a learner
    on RLlib's own handling (H-PPO's, PPO's) keeps RLlib's default."""
    from rllib_ext.core.non_finite import SkipNonFiniteGradients

    config = config_class()
    skips_itself = issubclass(config.get_default_learner_class(), SkipNonFiniteGradients)
    assert config.torch_skip_nan_gradients is skips_itself


def test_hppo_skips_a_non_finite_gradient_step_too(ray_session):
    algo = (HPPOConfig().environment("rllib_ext/Moving-v0")
            .training(param_layout=[1, 1, 0], train_batch_size_per_learner=64,
                      minibatch_size=32, num_epochs=1)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
            .rl_module(model_config={"fcnet_hiddens": [8]})
            .build_algo())
    try:
        learner = algo.learner_group._learner
        # One finite step first: Adam then has momentum, which RLlib's PPO learner would
        # apply again on the zeroed non-finite gradients.
        learner.apply_gradients({pid: torch.ones_like(p) for pid, p in learner._params.items()})
        before = {k: v.clone() for k, v in learner._params.items()}
        learner.apply_gradients({pid: torch.full_like(p, float("nan"))
                                 for pid, p in learner._params.items()})
        assert all(torch.equal(before[k], p) for k, p in learner._params.items())
        assert learner.metrics.peek((ALL_MODULES, NON_FINITE_GRADIENT_STEPS_KEY)) == 1
    finally:
        algo.stop()
