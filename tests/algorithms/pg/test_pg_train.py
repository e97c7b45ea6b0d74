"""PG end to end on the shared Ray session: train(), learning on a bandit, checkpoints, Tune."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns

from rllib_ext import PGConfig
from rllib_ext.algorithms.pg.pg_learner import (
    ENTROPY_KEY,
    FRESH_RATIO_MAX_DEVIATION_KEY,
    GRADIENT_NORM_KEY,
    IS_EFFECTIVE_SAMPLE_SIZE_KEY,
    IS_WEIGHT_MAX_KEY,
    IS_WEIGHT_MEAN_KEY,
    MEAN_ADVANTAGE_KEY,
    MEAN_BASELINE_KEY,
    OPTIMAL_BASELINE_STD_KEY,
    POLICY_LOSS_KEY,
    VALUE_EXPLAINED_VARIANCE_KEY,
    VALUE_LOSS_KEY,
)

TINY = {"fcnet_hiddens": [16]}


class TwoArmedBandit(gym.Env):
    """One-step episodes; arm 1 pays 1, arm 0 pays 0."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        pass

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), float(action == 1), True, False, {}


def _cartpole(**training):
    return (
        PGConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(train_batch_size_per_learner=200, **training)
        .rl_module(model_config=TINY)
        .debugging(seed=0)
    )


def _greedy_actions(algo, obs):
    module = algo.get_module()
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: torch.as_tensor(obs)})[
            Columns.ACTION_DIST_INPUTS
        ]
    return logits.argmax(-1).numpy()


def test_one_iteration_reports_pg_metrics(ray_session):
    algo = _cartpole().build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    for key in (POLICY_LOSS_KEY, MEAN_ADVANTAGE_KEY, ENTROPY_KEY, GRADIENT_NORM_KEY):
        assert np.isfinite(learner[key]), key
    assert learner[GRADIENT_NORM_KEY] > 0
    # Normalised advantages have zero batch mean; two-action entropy is at most ln 2.
    assert abs(learner[MEAN_ADVANTAGE_KEY]) < 1e-5
    assert 0 < learner[ENTROPY_KEY] <= np.log(2) + 1e-6
    assert result["num_env_steps_sampled_lifetime"] >= 200


@pytest.mark.parametrize(
    "training",
    [
        {"baseline": "mean"},
        {"baseline": "optimal", "normalize_advantages": False, "lr": 0.3},
        {"off_policy_reuse": 2, "importance_sampling": "per_decision"},
        {
            "baseline": "optimal",
            "normalize_advantages": False,
            "lr": 0.3,
            "off_policy_reuse": 1,
            "importance_sampling": "trajectory",
            "is_clip": 5.0,
            "is_self_normalize": True,
        },
        {"baseline": "value", "value_lr": 0.01},
        {"baseline": "value", "gae_lambda": 0.5},
    ],
    ids=["mean", "optimal", "reuse-per_decision", "optimal-reuse-trajectory-clip-sn", "value",
         "value-gae"],
)
def test_estimators_learn_the_better_arm(ray_session, training):
    config = (
        PGConfig()
        .environment(TwoArmedBandit)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(**{"lr": 0.05, "train_batch_size_per_learner": 64, **training})
        .rl_module(model_config=TINY)
        .debugging(seed=1)
    )
    algo = config.build_algo()
    try:
        module = algo.get_module()
        obs = torch.zeros(1, 1)

        def p_good():
            with torch.no_grad():
                logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
            return torch.softmax(logits, -1)[0, 1].item()

        before = p_good()
        for _ in range(8):
            learner = algo.train()["learners"]["default_policy"]
        after = p_good()
    finally:
        algo.stop()
    assert 0.3 < before < 0.7
    assert after > 0.9, (before, after)
    if training.get("baseline") == "optimal":
        # 0/1 rewards: each b_k is a ratio of weighted means of returns in [0, 1].
        assert 0 <= learner[MEAN_BASELINE_KEY] <= 1
        assert learner[OPTIMAL_BASELINE_STD_KEY] >= 0


def test_reuse_fresh_ratio_is_exactly_one(ray_session):
    # The env runners record log mu(a|s) when sampling; on the fresh batch the learner's policy
    # *is* mu. The recorded log-probs must agree with the learner's to float32 rounding (the
    # runner evaluates a different batch shape), and the ratios used are then exactly 1.
    algo = _cartpole(off_policy_reuse=2, importance_sampling="per_decision", lr=0.05).build_algo()
    try:
        results = [algo.train()["learners"]["default_policy"] for _ in range(3)]
    finally:
        algo.stop()
    for learner in results:
        assert learner[FRESH_RATIO_MAX_DEVIATION_KEY] < 1e-5
    first, later = results[0], results[1:]
    # Iteration 1 has fresh data only: all weights 1, ESS = number of steps.
    assert first[IS_WEIGHT_MEAN_KEY] == 1.0 and first[IS_WEIGHT_MAX_KEY] == 1.0
    assert first[IS_EFFECTIVE_SAMPLE_SIZE_KEY] == first["num_module_steps_trained"]
    for learner in later:
        assert learner[IS_WEIGHT_MAX_KEY] > 1.0
        # Unequal weights: fewer effective samples than steps in the (fresh + reused) batch.
        assert 0 < learner[IS_EFFECTIVE_SAMPLE_SIZE_KEY] < learner["num_module_steps_trained"]


def test_gaussian_policy_learns_its_free_log_std(ray_session):
    config = (
        PGConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=200)
        .rl_module(model_config=TINY)
    )
    algo = config.build_algo()
    try:
        module = algo.get_module()
        log_std = dict(module.named_parameters())
        key = next(k for k in log_std if "log_std" in k)
        before = log_std[key].detach().clone()
        assert before.shape == (1,)  # one state-independent log-std per action dimension
        algo.train()
        after = dict(algo.get_module().named_parameters())[key].detach()
    finally:
        algo.stop()
    assert not torch.equal(before, after)


def test_checkpoint_round_trip(ray_session, tmp_path):
    algo = _cartpole(baseline="time_mean").build_algo()
    obs = np.random.default_rng(0).uniform(-0.2, 0.2, (32, 4)).astype(np.float32)
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        weights = algo.get_module().state_dict()
        actions = _greedy_actions(algo, obs)
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        assert type(restored).__name__ == "PG"
        assert restored.config.baseline == "time_mean"
        assert restored.iteration == 1
        new_weights = restored.get_module().state_dict()
        assert weights.keys() == new_weights.keys()
        for k in weights:
            torch.testing.assert_close(weights[k], new_weights[k], rtol=0, atol=0)
        np.testing.assert_array_equal(actions, _greedy_actions(restored, obs))
        restored.train()  # and training goes on
    finally:
        restored.stop()


def test_remote_env_runner_and_two_learners(ray_session):
    # Advantages are computed on the driver because LearnerGroup may slice episodes when it
    # shards them over learners: this runs the sharded path end to end, with the learner-side
    # extras (optimal baseline, per-step importance weights on the reused batch) in the
    # second iteration.
    config = (
        _cartpole()
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2)
        .learners(num_learners=2, num_cpus_per_learner=0.5)
        .training(
            train_batch_size_per_learner=100,
            baseline="optimal",
            normalize_advantages=False,
            off_policy_reuse=1,
            importance_sampling="per_step",
        )
    )
    algo = config.build_algo()
    try:
        algo.train()
        result = algo.train()
        learner_weights = algo.learner_group.foreach_learner(
            lambda learner: learner.get_state(components="rl_module")
        )
        runner_weights = algo.env_runner_group.foreach_env_runner(
            lambda er: er.module.get_state(inference_only=True), local_env_runner=False
        )[0]
    finally:
        algo.stop()
    assert np.isfinite(result["learners"]["default_policy"][POLICY_LOSS_KEY])
    assert result["num_env_steps_sampled_lifetime"] >= 400
    first, second = (w.get()["rl_module"]["default_policy"] for w in learner_weights)
    for k, v in runner_weights.items():
        np.testing.assert_allclose(np.asarray(v), np.asarray(first[k]))
        # Each learner computes its own b from its shard, but the baseline enters the loss, so
        # DDP averages it with the rest of the gradient and the two replicas stay identical.
        np.testing.assert_array_equal(np.asarray(first[k]), np.asarray(second[k]))


def test_tuner_by_name_runs_two_trials(ray_session, tmp_path):
    from ray import tune

    config = _cartpole().training(lr=tune.grid_search([1e-3, 1e-2]))
    grid = tune.Tuner(
        "PG",
        param_space=config,
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), stop={"training_iteration": 1}, verbose=0
        ),
    ).fit()
    assert len(grid) == 2
    assert grid.errors == []
    assert sorted(r.config["lr"] for r in grid) == [1e-3, 1e-2]
    for r in grid:
        assert np.isfinite(r.metrics["learners"]["default_policy"][POLICY_LOSS_KEY])


@pytest.mark.parametrize("baseline", ["none", "time_mean"])
def test_other_baselines_train(ray_session, baseline):
    algo = _cartpole(baseline=baseline, normalize_advantages=False).build_algo()
    try:
        learner = algo.train()["learners"]["default_policy"]
    finally:
        algo.stop()
    if baseline == "none":
        assert learner["mean_baseline"] == 0.0
        assert learner[MEAN_ADVANTAGE_KEY] == pytest.approx(learner["mean_return_to_go"])
    else:
        assert learner["mean_baseline"] > 0


def test_value_network_fits_the_returns_and_stays_on_the_learners(ray_session):
    """CartPole's reward-to-go depends on the state (time left before falling): the value
    network's explained variance grows over iterations; the env runners get the policy only."""
    algo = _cartpole(baseline="value", gae_lambda=0.95, value_lr=5e-3,
                     value_gradient_steps=20).training(train_batch_size_per_learner=500).build_algo()
    try:
        explained = []
        for _ in range(6):
            learner = algo.train()["learners"]["default_policy"]
            explained.append(learner[VALUE_EXPLAINED_VARIANCE_KEY])
            assert np.isfinite(learner[VALUE_LOSS_KEY])
        learner_state = algo.learner_group.get_weights()["default_policy"]
        runner_state = algo.env_runner_group.local_env_runner.module.get_state()
    finally:
        algo.stop()
    assert max(explained[3:]) > 0.2 > explained[0], explained
    assert any(k.startswith("vf.") for k in learner_state)
    assert not any(k.startswith(("vf.", "value_encoder.")) for k in runner_state)


def test_value_baseline_with_two_learners_keeps_them_identical(ray_session):
    algo = (_cartpole(baseline="value", gae_lambda=0.9).training(train_batch_size_per_learner=100)
            .learners(num_learners=2, num_cpus_per_learner=0.5).build_algo())
    try:
        algo.train()
        states = [w.get()["rl_module"]["default_policy"] for w in algo.learner_group
                  .foreach_learner(lambda learner: learner.get_state(components="rl_module"))]
    finally:
        algo.stop()
    assert any(k.startswith("vf.") for k in states[0])
    for k, v in states[0].items():  # the value steps' gradients are averaged too
        np.testing.assert_array_equal(np.asarray(v), np.asarray(states[1][k]))
