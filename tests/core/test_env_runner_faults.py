"""Lost env runners fail fast: with restarts off, train() raises a clear error at once (and on
every later call) instead of spinning; with restarts on, a killed env runner is replaced and
training goes on. PDQN and ACE (the lean training step) and PG, one remote env runner each."""

from __future__ import annotations

import time

import pytest
import ray

from rllib_ext import ACEConfig, PDQNConfig, PGConfig
from rllib_ext.core.env_runner_faults import EnvRunnersLostError
from rllib_ext.core.rllib_compat import env_runner_manager

SAMPLE_TIMEOUT_S = 10.0
#: train() calls after the kill within which the replaced runner must be sampling again.
MAX_ITERATIONS_TO_RECOVER = 6
STEPS = ("env_runners", "num_env_steps_sampled_lifetime")


def _pdqn():
    return (
        PDQNConfig()
        .environment("rllib_ext/Platform-v0", env_config={"scale": True})
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  q_hiddens=[8], param_hiddens=[8], replay_capacity=500)
        .reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0)
    )


def _ace():
    return (
        ACEConfig()
        .environment("Pendulum-v1")
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  causal_sample_size=40, causal_update_interval=10**9, reset_interval=0)
        .env_runners(rollout_fragment_length=16)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .reporting(min_sample_timesteps_per_iteration=32, min_time_s_per_iteration=0)
    )


def _pg():
    return (
        PGConfig()
        .environment("CartPole-v1")
        .training(train_batch_size_per_learner=64)
        .rl_module(model_config={"fcnet_hiddens": [8]})
    )


CONFIGS = {"PDQN": _pdqn, "ACE": _ace, "PG": _pg}


def _build(name, restarts):
    config = (
        CONFIGS[name]()
        .env_runners(num_env_runners=1, sample_timeout_s=SAMPLE_TIMEOUT_S)
        .fault_tolerance(restart_failed_env_runners=restarts)
        .debugging(seed=0)
    )
    return config.build_algo()


def _kill_env_runner(algo):
    """Kills the one remote env runner for good (Ray does not restart it)."""
    actor = env_runner_manager(algo.env_runner_group).actors()[1]
    ray.kill(actor)
    return actor


def _steps(result):
    return result[STEPS[0]][STEPS[1]]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_lost_env_runner_without_restarts_raises_at_once(ray_session, name):
    algo = _build(name, restarts=False)
    try:
        algo.train()
        _kill_env_runner(algo)
        for _ in range(2):  # the first call sees the death, later ones find no runner left
            start = time.monotonic()
            with pytest.raises(EnvRunnersLostError,
                               match=r"config\.fault_tolerance\(restart_failed_env_runners=True\)"):
                algo.train()
            assert time.monotonic() - start < SAMPLE_TIMEOUT_S
    finally:
        algo.stop()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_lost_env_runner_with_restarts_is_replaced(ray_session, name):
    algo = _build(name, restarts=True)
    try:
        steps = [_steps(algo.train())]
        killed = _kill_env_runner(algo)
        group = algo.env_runner_group
        # The replacement is a new Ray worker process (~10 s to import RLlib, more on a busy
        # machine): iterations while it starts may sample nothing, none may raise.
        for _ in range(MAX_ITERATIONS_TO_RECOVER):
            steps.append(_steps(algo.train()))
            if group.num_healthy_remote_env_runners() == 1 and steps[-1] > steps[-2]:
                break
        assert group.num_healthy_remote_env_runners() == 1
        assert env_runner_manager(group).actors()[1] != killed
        assert steps[-1] > steps[0], steps
    finally:
        algo.stop()


def test_no_healthy_env_runner_with_ignored_failures_raises(ray_session):
    """ignore_env_runner_failures=True without restarts goes on with the healthy runners, and
    raises once none is left."""
    algo = (_pdqn().env_runners(num_env_runners=1, sample_timeout_s=SAMPLE_TIMEOUT_S)
            .fault_tolerance(restart_failed_env_runners=False, ignore_env_runner_failures=True)
            .debugging(seed=0).build_algo())
    try:
        algo.train()
        _kill_env_runner(algo)
        with pytest.raises(EnvRunnersLostError, match="No healthy env runner left"):
            algo.train()
    finally:
        algo.stop()


class _NoHealthyGroup:
    """An env runner group whose one remote env runner never comes back."""

    def num_remote_env_runners(self):
        return 1

    def num_healthy_remote_env_runners(self):
        return 0


def test_runners_that_cannot_be_restored_raise_after_the_tolerance(monkeypatch):
    """Restarts on, but the lost runner neither answers nor is dead for good (e.g. no resources
    for it): rounds return nothing, then more than the tolerance of them raise (no spinning)."""
    from types import SimpleNamespace

    from rllib_ext.core import env_runner_faults

    monkeypatch.setattr(env_runner_faults, "replace_dead_env_runners", lambda group, **kwargs: [])
    config = SimpleNamespace(
        restart_failed_env_runners=True, env_runner_health_probe_timeout_s=1.0,
        max_num_env_runner_restarts=1000, num_consecutive_env_runner_failures_tolerance=2)
    algo = SimpleNamespace(env_runner_group=_NoHealthyGroup(), config=config)
    assert env_runner_faults.sample_env_runners(algo) == ([], [])
    assert env_runner_faults.sample_env_runners(algo) == ([], [])
    with pytest.raises(EnvRunnersLostError,
                       match="num_consecutive_env_runner_failures_tolerance=2"):
        env_runner_faults.sample_env_runners(algo)
