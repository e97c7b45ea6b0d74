"""Multi-node: a 2-node ``ray.cluster_utils.Cluster`` on this machine, P-DQN and ACE with one
env runner and one learner on each node (custom resources force the placement; the node ids
are asserted), 2 learners that end every iteration with identical weights, and for ACE a
causal fit delivered to both learners.

Marked ``replaces_ray_session``, so it runs after every other test (``tests/conftest.py``): it
replaces the session's Ray with the cluster and, if a later test still needs the session's
Ray, starts it again.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import ray
import torch

import rllib_ext
from rllib_ext import ACEConfig, PDQNConfig
from rllib_ext.algorithms.ace.callbacks import ACE_RESULTS
from rllib_ext.algorithms.pdqn.pdqn_keys import Q_LOSS_KEY
from rllib_ext.core.ray_session import init_local_ray

pytestmark = pytest.mark.replaces_ray_session

#: Custom resources: one env runner and one learner fit on each node.
RUNNER_SLOT, LEARNER_SLOT = "rllib_ext_test_runner_slot", "rllib_ext_test_learner_slot"
NODE = {"num_cpus": 2, "resources": {RUNNER_SLOT: 1, LEARNER_SLOT: 1},
        "object_store_memory": 150 * 1024**2}
#: Seconds an asynchronous causal fit may take to come back (milliseconds when idle).
FIT_TIMEOUT_S = 60


def _later_tests_need_ray(request) -> bool:
    items = request.session.items
    mine = [i for i, item in enumerate(items) if getattr(item, "module", None) is request.module]
    return any("ray_session" in item.fixturenames for item in items[max(mine) + 1:])


@pytest.fixture(scope="module")
def cluster(request):
    """Two nodes (the head and one worker), the test process connected as the driver."""
    from ray.cluster_utils import Cluster

    was_running = ray.is_initialized()
    ray.shutdown()  # the session's single-node Ray, if a test started it
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        rllib_ext.register()  # the registry lives in the cluster's GCS
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        assert len(nodes) == 2
        yield set(nodes)
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_running and _later_tests_need_ray(request):
            init_local_ray(num_cpus=2, include_dashboard=False)
            rllib_ext.register()


def _spread(config):
    """2 env runners and 2 learners, one of each per node."""
    return (config
            .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5,
                         custom_resources_per_env_runner={RUNNER_SLOT: 1})
            .learners(num_learners=2, num_cpus_per_learner=0.5,
                      custom_resources_per_learner={LEARNER_SLOT: 1})
            .debugging(seed=0))


def _placement(algo) -> tuple[list[str], list[str]]:
    """The node ids of the env runners and of the learners."""
    runners = algo.env_runner_group.foreach_env_runner(
        lambda runner: ray.get_runtime_context().get_node_id(), local_env_runner=False)
    learners = [r.get() for r in algo.learner_group.foreach_learner(
        lambda learner: ray.get_runtime_context().get_node_id())]
    return runners, learners


def _learner_weights(algo) -> list[dict]:
    return [r.get() for r in algo.learner_group.foreach_learner(
        lambda learner: {k: v.detach().cpu().clone() for k, v in
                         learner.module["default_policy"].unwrapped().state_dict().items()})]


def _assert_identical_and_trained(before: dict, weights: list[dict]) -> None:
    first, second = weights
    assert any(not torch.equal(before[k], first[k]) for k in before), "no gradient step"
    for k in first:
        torch.testing.assert_close(first[k], second[k], rtol=0, atol=0, msg=k)


def test_pdqn_runners_and_learners_on_two_nodes(cluster):
    algo = _spread(
        PDQNConfig()
        .environment("rllib_ext/Platform-v0", env_config={"scale": True})
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  q_hiddens=[8], param_hiddens=[8], replay_capacity=500)
        .reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0)
    ).build_algo()
    try:
        runners, learners = _placement(algo)
        before = _learner_weights(algo)[0]
        for _ in range(2):
            result = algo.train()
        weights = _learner_weights(algo)
    finally:
        algo.stop()
    assert len(runners) == 2 and set(runners) == cluster, runners
    assert len(learners) == 2 and set(learners) == cluster, learners
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 128
    assert np.isfinite(result["learners"]["default_policy"][Q_LOSS_KEY])
    _assert_identical_and_trained(before, weights)


def test_ace_runners_learners_and_a_causal_fit_on_two_nodes(cluster):
    """ACE on Pendulum: the causal actor's fit (due once the FIFO holds 40 transitions, after
    the first iteration) reaches both learners, which stay identical."""
    algo = _spread(
        ACEConfig()
        .environment("Pendulum-v1")
        .env_runners(rollout_fragment_length=10)
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  causal_sample_size=40, causal_update_interval=40, reset_interval=0,
                  causal_worker_num_cpus=0.5,
                  replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer",
                                        "capacity": 2000, "alpha": 0.6, "beta": 0.4})
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .reporting(min_sample_timesteps_per_iteration=40, min_time_s_per_iteration=0)
    ).build_algo()
    try:
        runners, learners = _placement(algo)
        before = _learner_weights(algo)[0]
        results = [algo.train() for _ in range(2)]
        deadline = time.monotonic() + FIT_TIMEOUT_S
        while results[-1][ACE_RESULTS]["causal_fits"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)  # the fit runs in the causal actor; the next iteration polls it
            results.append(algo.train())
        weights = _learner_weights(algo)
        causal = [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: learner.causal_weights().cpu().numpy())]
        fitted = algo.causal.weights.copy()
    finally:
        algo.stop()
    assert len(runners) == 2 and set(runners) == cluster, runners
    assert len(learners) == 2 and set(learners) == cluster, learners
    ace = results[-1][ACE_RESULTS]
    assert ace["causal_fits"] >= 1 and ace["causal_fallbacks"] == 0, ace
    # Pendulum has one action dimension, whose normalised weight is 1 with or without a fit:
    # the fit's data step is what shows that its weights were taken.
    assert ace["causal_weights_staleness_env_steps"] >= 0
    for learner_weights in causal:
        np.testing.assert_allclose(learner_weights, fitted, rtol=1e-6)
    assert np.isfinite(results[-1]["learners"]["default_policy"]["qf_loss"])
    _assert_identical_and_trained(before, weights)
