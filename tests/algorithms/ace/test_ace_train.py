"""ACE through RLlib on the shared Ray session: causal fits (synchronous, asynchronous, a dead
worker), resets reaching the env runners, every reset variant, checkpoints and Tune."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm

from rllib_ext.algorithms.ace.callbacks import ACE_RESULTS
from tests.helpers.tiny_configs import ACE_DIM as DIM
from tests.helpers.tiny_configs import tiny_ace as _tiny


def _learner_weights(algo):
    return algo.learner_group.foreach_learner(
        lambda learner: learner.causal_weights().cpu().numpy())


def _learner_causal_weights(algo):
    return next(iter(_learner_weights(algo))).get()


def test_sync_fit_sets_weights_and_checkpoint_round_trip(ray_session, tmp_path):
    algo = _tiny(learn=False, causal_async=False).build_algo()
    try:
        np.testing.assert_array_equal(_learner_causal_weights(algo), np.ones(DIM))
        result = algo.train()  # 20 steps: FIFO not full yet
        assert result[ACE_RESULTS]["causal_fits"] == 0
        result = algo.train()  # 40 steps: full -> fitted in this iteration (synchronous)
        ace = result[ACE_RESULTS]
        assert ace["causal_fits"] == 1 and ace["causal_fit_pending"] == 0
        weights = algo.causal.weights
        assert weights.sum() == pytest.approx(float(DIM)) and not np.allclose(weights, 1.0)
        np.testing.assert_allclose(_learner_causal_weights(algo), weights, rtol=1e-6)
        assert [ace[f"causal_weight_{i}"] for i in range(DIM)] == pytest.approx(list(weights))
        fifo = [x.copy() for x in algo.causal.fifo.arrays()]
        path = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        np.testing.assert_allclose(_learner_causal_weights(restored), weights, rtol=1e-6)
        np.testing.assert_array_equal(restored.causal.weights, weights)
        assert restored.causal.num_fits == 1
        assert restored.causal.fifo.num_added == 40
        for x, y in zip(restored.causal.fifo.arrays(), fifo, strict=True):
            np.testing.assert_array_equal(x, y)
        # Not due again (interval 1e9): the restored run does not refit the same data.
        assert restored.train()[ACE_RESULTS]["causal_fits"] == 1
    finally:
        restored.stop()


def test_async_fit_never_blocks_and_a_dead_worker_is_replaced(ray_session):
    # Each fit sleeps 3 s first. Iterations without learning take a fraction of that, so
    # several complete while a fit is pending (the poll does not wait).
    algo = _tiny(learn=False, slow_fit=True).build_algo()
    try:
        results = [algo.train()[ACE_RESULTS] for _ in range(3)]
        assert results[-1]["causal_fit_pending"] == 1 and results[-1]["causal_fits"] == 0
        first = algo.causal_worker
        ray.kill(first)  # the worker dies with a fit in flight
        pending = []
        for _ in range(2000):
            ace = algo.train()[ACE_RESULTS]
            if ace["causal_fits"]:
                break
            pending.append(ace["causal_fit_pending"])
        assert ace["causal_worker_restarts"] == 1 and algo.causal_worker is not first
        assert ace["causal_fits"] == 1 and ace["causal_fallbacks"] == 0
        assert sum(pending) >= 2  # iterations kept completing while the refit ran
        weights = algo.causal.weights
        assert not np.allclose(weights, 1.0)
        np.testing.assert_allclose(_learner_causal_weights(algo), weights, rtol=1e-6)
        assert ace["causal_weights_staleness_env_steps"] >= 0
    finally:
        algo.stop()


def _runner_state(algo, remote: bool) -> dict:
    if remote:
        return algo.env_runner_group.foreach_env_runner(
            lambda runner: runner.module.get_state(), local_env_runner=False)[0]
    return algo.env_runner.module.get_state()


def _assert_runner_equals_learner(algo, remote):
    runner = _runner_state(algo, remote)
    learner = algo.learner_group.get_weights()["default_policy"]
    assert runner  # the inference-only module: policy networks
    for key, value in runner.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(learner[key]), err_msg=key)
    return {k: np.asarray(v).copy() for k, v in runner.items()}


@pytest.mark.parametrize("runners", [0, 1])
def test_reset_reaches_the_env_runners(ray_session, runners):
    algo = _tiny(runners=runners, reset_interval=1).build_algo()
    try:
        algo.train()  # 20 env steps: no update yet
        result = algo.train()  # updates; resets in on_train_result, after the iteration's sync
        assert result[ACE_RESULTS]["num_resets"] == 1
        before = _assert_runner_equals_learner(algo, runners > 0)
        stats = next(iter(algo.learner_group.foreach_learner(lambda lrn: lrn.ace_stats()))).get()
        stats["last_reset_update"] = -1  # force the next reset now
        after_stats = algo.maybe_reset(stats)
        assert after_stats["num_resets"] == 2 and after_stats["last_reset_factor"] == 0.9
        after = _assert_runner_equals_learner(algo, runners > 0)
        assert any(not np.array_equal(before[k], after[k]) for k in before)
    finally:
        algo.stop()


@pytest.mark.parametrize("strength, scope, interval", [
    ("dormancy", "all", 0), ("dormancy", "all", 4), ("causal", "all", 4),
    ("dormancy", "dormant", 4), ("causal", "dormant", 4)])
def test_every_reset_kind_trains(ray_session, strength, scope, interval):
    algo = _tiny(reset_strength=strength, reset_scope=scope, reset_interval=interval,
                 causal_async=False).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    ace = result[ACE_RESULTS]
    learner = result["learners"]["default_policy"]
    updates = ace["num_gradient_updates"]
    assert updates >= 8
    assert (ace["num_resets"] == 0) if interval == 0 else (ace["num_resets"] >= 1)
    # Causal variants: weights fitted (FIFO of 40 filled) -> factor from their spread.
    assert ace["causal_fits"] >= 1
    if interval and strength == "dormancy":
        assert ace["last_reset_factor"] == pytest.approx(
            float(np.clip(1 - ace["dormancy_ratio"], 0.2, 0.9)), abs=0.2)
    # policy_update_freq = 2: the policy took every other step, starting with the first.
    assert ace["num_policy_updates"] == (updates + 1) // 2
    assert np.isfinite(learner["qf_loss"]) and np.isfinite(learner["policy_loss"])
    assert 0.0 <= ace["dormancy_ratio"] <= 1.0


def test_policy_and_targets_move_only_on_policy_steps(ray_session):
    from ray.rllib.core.columns import Columns

    from rllib_ext.envs.causal_reach import CausalReachEnv

    env = CausalReachEnv(influence=[1.0, 0.0])
    learner = _tiny(policy_update_freq=3).build_learner(env=env)
    module = learner.module["default_policy"].unwrapped()
    rng = np.random.default_rng(0)
    batch = {
        Columns.OBS: rng.uniform(-1, 1, (16, DIM)).astype(np.float32),
        Columns.NEXT_OBS: rng.uniform(-1, 1, (16, DIM)).astype(np.float32),
        Columns.ACTIONS: rng.uniform(-1, 1, (16, DIM)).astype(np.float32),
        Columns.REWARDS: rng.uniform(-1, 1, 16).astype(np.float32),
        Columns.TERMINATEDS: np.zeros(16, bool), Columns.TRUNCATEDS: np.zeros(16, bool),
        "n_step": np.ones(16, np.float32), "weights": np.ones(16, np.float32),
    }
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    def snapshot():
        return ([p.detach().clone() for p in module.pi.parameters()],
                [p.detach().clone() for p in module.target_qf.parameters()],
                [p.detach().clone() for p in module.qf.parameters()])

    moved = []
    for _ in range(4):
        before = snapshot()
        learner.update(batch=MultiAgentBatch({"default_policy": SampleBatch(batch)}, 16))
        after = snapshot()
        moved.append([any(not torch.equal(x, y) for x, y in zip(b, a, strict=True))
                      for b, a in zip(before, after, strict=True)])
    # Steps 1 and 4 are policy steps (freq 3); the critic moves every step.
    assert moved == [[True, True, True], [False, False, True], [False, False, True],
                     [True, True, True]]


def test_tune_runs_ace_by_name(ray_session, tmp_path):
    from ray import tune

    config = _tiny(causal_async=False)
    results = tune.Tuner(
        "ACE", param_space=config,
        run_config=tune.RunConfig(storage_path=str(tmp_path), stop={"training_iteration": 2},
                                  verbose=0),
    ).fit()
    result = results.get_best_result(metric="training_iteration", mode="max")
    assert result.error is None
    assert result.metrics[ACE_RESULTS]["causal_fits"] == 1
