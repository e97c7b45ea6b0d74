"""P-DQN through RLlib: the TD target, each action-space form, hook strategies, checkpoints,
Tune and a remote env runner (all on the shared Ray session, tiny budgets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns

from rllib_ext.algorithms.pdqn.pdqn_keys import Q_LOSS_KEY
from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import compute_q_loss
from rllib_ext.core.parameterised.parameterised_learner import ACTION_INDEX, ACTION_PARAMS
from rllib_ext.envs import make
from tests.helpers.tiny_configs import PLATFORM
from tests.helpers.tiny_configs import tiny_pdqn as _tiny
from tests.helpers.toy_env import ToyHybridEnv


def _param_weights(algo):
    return {k: v.clone() for k, v in algo.get_module().param_net.state_dict().items()}


@pytest.mark.parametrize("reward_scale", [1.0, 0.02])
def test_td_target_uses_target_networks_and_plain_max(ray_session, reward_scale):
    env = make(*PLATFORM[:1], **PLATFORM[1])
    learner = _tiny(variant="pdqn", reward_scale=reward_scale).build_learner(env=env)
    module = learner.module["default_policy"].unwrapped()
    with torch.no_grad():
        for net, bias in ((module.q_net.net, [0.5, 0.5, 0.5]),
                          (module.target_q_net.net, [1.0, 2.0, 3.0])):
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor(bias))
    batch = {
        Columns.OBS: torch.zeros(2, 9), Columns.NEXT_OBS: torch.zeros(2, 9),
        ACTION_INDEX: torch.tensor([0, 2]), ACTION_PARAMS: torch.zeros(2, 3),
        Columns.REWARDS: torch.tensor([1.0, 0.5]), Columns.TERMINATEDS: torch.tensor([0.0, 1.0]),
    }
    _, stats = compute_q_loss(module, batch, learner.config)
    # y = c * r + 0.9 * (1 - done) * max(1, 2, 3) = [c + 2.7, 0.5 c]; Q(s, a) = 0.5 everywhere.
    # (Double DQN would pick argmax of the online net - all ties - and use target Q = 1.)
    c = reward_scale
    expected = ((0.5 - (c + 2.7)) ** 2 + (0.5 - 0.5 * c) ** 2) / 2
    assert stats[Q_LOSS_KEY].item() == pytest.approx(expected)


@pytest.mark.parametrize("env, training", [
    (("rllib_ext/Platform-v0", {"scale": True}), {"variant": "mpdqn"}),            # flat tuple
    (("rllib_ext/Goal-v0", {"scale": True, "flat_actions": False}), {"variant": "pdqn"}),
    (ToyHybridEnv, {"variant": "spdqn", "param_layout": [1, 0, 1]}),             # flat Box
])
def test_each_action_space_form_trains(ray_session, env, training):
    algo = _tiny(env, **training).build_algo()
    try:
        before = _param_weights(algo)
        result = algo.train()
        after = _param_weights(algo)
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    assert np.isfinite(learner[Q_LOSS_KEY]) and np.isfinite(learner["param_loss"])
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_hook_strategies_change_the_update(ray_session):
    weights = {}
    for strategy in ("invert", "zero", "none"):
        algo = _tiny(action_gradient_strategy=strategy).build_algo()
        try:
            algo.train()
            weights[strategy] = _param_weights(algo)
        finally:
            algo.stop()
    key = next(k for k in weights["invert"] if k.endswith("weight"))
    assert not torch.allclose(weights["invert"][key], weights["none"][key])
    assert not torch.allclose(weights["invert"][key], weights["zero"][key])


def test_squash_strategy_bounds_the_parameters(ray_session):
    algo = _tiny(action_gradient_strategy="squash").build_algo()
    try:
        module = algo.get_module()
        assert module.param_net.squash
        out = module.param_net(torch.randn(64, 9) * 100)
        assert out.abs().max() <= 1.0
    finally:
        algo.stop()


def test_checkpoint_round_trip_and_tune(ray_session, tmp_path):
    from ray import tune

    algo = _tiny(variant="mpdqn", initial_params=[-0.8, -0.97222, 0.86047]).build_algo()
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (16, 9)), dtype=torch.float32)
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        module = algo.get_module()
        actions = module.forward_inference({Columns.OBS: obs})[Columns.ACTIONS]
        weights = module.state_dict()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        assert restored.config.initial_params == [-0.8, -0.97222, 0.86047]
        new = restored.get_module()
        for k, v in weights.items():
            torch.testing.assert_close(v, new.state_dict()[k], rtol=0, atol=0)
        again = new.forward_inference({Columns.OBS: obs})[Columns.ACTIONS]
        assert torch.equal(actions[0], again[0])
        for a, b in zip(actions[1:], again[1:], strict=True):
            torch.testing.assert_close(a, b)
    finally:
        restored.stop()

    grid = tune.Tuner(
        "PDQN", param_space=_tiny(),
        run_config=tune.RunConfig(storage_path=str(tmp_path), stop={"training_iteration": 1},
                                  verbose=0),
    ).fit()
    assert grid.errors == [] and len(grid) == 1


def test_remote_env_runner(ray_session):
    algo = _tiny().env_runners(num_env_runners=1).build_algo()
    try:
        result = algo.train()
        learner_w = algo.learner_group.get_weights()["default_policy"]
        runner_w = algo.env_runner_group.foreach_env_runner(
            lambda er: er.module.get_state(inference_only=True), local_env_runner=False)[0]
    finally:
        algo.stop()
    assert result["num_env_steps_sampled_lifetime"] >= 64
    for k, v in runner_w.items():
        np.testing.assert_allclose(np.asarray(v), np.asarray(learner_w[k]))


def test_local_env_runner_acts_with_the_learner_weights(ray_session):
    """num_env_runners=0, num_learners=0: the runner's module holds the learner module's own
    tensors (no copy per sync), carries the learner's weights sequence number, and stays in
    eval mode; the learner's module trains in train mode."""
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    from rllib_ext.core.rllib_compat import local_learner, weights_seq_no

    algo = _tiny().build_algo()
    try:
        algo.train()
        learner = local_learner(algo.learner_group)
        learner_module = learner.module["default_policy"]
        runner = algo.env_runner_group.local_env_runner
        learner_tensors = learner_module.state_dict(keep_vars=True)
        runner_tensors = runner.module.state_dict(keep_vars=True)
        assert runner_tensors and set(runner_tensors) < set(learner_tensors)
        for name, tensor in runner_tensors.items():
            assert tensor is learner_tensors[name], name
        assert runner.get_state()[WEIGHTS_SEQ_NO] == weights_seq_no(learner) > 1
        assert runner.module.inference_only and not runner.module.training
        assert learner_module.training
        # A checkpoint restored into the running algorithm keeps the two sharing.
        state = algo.get_state()
        algo.train()
        algo.set_state(state)
        for name, tensor in runner.module.state_dict(keep_vars=True).items():
            assert tensor is learner_module.state_dict(keep_vars=True)[name], name
    finally:
        algo.stop()


def test_local_env_runner_gets_a_copy_where_it_cannot_share(ray_session, monkeypatch):
    """Where the runner's module cannot hold the learner's tensors (another device or dtype),
    the learner's state is copied into it on every sync."""
    from rllib_ext.core import replay_training
    from rllib_ext.core.rllib_compat import local_learner

    monkeypatch.setattr(replay_training, "alias_module_tensors", lambda source, target: False)
    algo = _tiny().build_algo()
    try:
        algo.train()
        learner_module = local_learner(algo.learner_group).module["default_policy"]
        learner_w = algo.learner_group.get_weights()["default_policy"]
        runner = algo.env_runner_group.local_env_runner
        runner_w = runner.module.get_state(inference_only=True)
        assert runner_w
        for k, v in runner_w.items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(learner_w[k]))
        assert all(t is not learner_module.state_dict(keep_vars=True)[k]
                   for k, t in runner.module.state_dict(keep_vars=True).items())
    finally:
        algo.stop()


class RecordReturns(RLlibCallback):
    """Every finished episode's full return (the chunks of one episode summed by its id)."""

    returns: list[float] = []
    _partial: dict = {}

    def on_episode_step(self, *, episode, **kwargs):
        self._partial[episode.id_] = self._partial.get(episode.id_, 0.0) + float(
            episode.get_rewards(-1))

    def on_episode_end(self, *, episode, **kwargs):
        self.returns.append(self._partial.pop(episode.id_, 0.0))


@pytest.mark.parametrize("envs, fragment", [(1, 1), (3, 2)])
def test_in_process_cycles_count_what_rllib_counts(ray_session, monkeypatch, envs, fragment):
    """num_env_runners=0, num_learners=0: one training_step runs cycles until the iteration's
    env steps and reduces the metrics once. The lifetime counts each cycle hands to ε and to
    the learner (its own count of env steps and finished episodes) equal RLlib's afterwards,
    the iteration reports the runner's and the learner's metrics, and its return is the mean
    return of the iteration's episodes (the last 100 of them,
    ``metrics_num_episodes_for_smoothing``), as RLlib reports it for one sampling call per
    iteration. (Reduced once per env step, RLlib's merge of the per-step windows gave a value
    that was neither this nor the mean of the last 100 episodes.)"""
    from rllib_ext.algorithms.pdqn import PDQN

    seen = []
    original = PDQN._learn_after_sampling

    def spy(self, new_steps, timesteps, reduce):
        seen.append((dict(timesteps), reduce))
        return original(self, new_steps, timesteps, reduce)

    monkeypatch.setattr(PDQN, "_learn_after_sampling", spy)
    RecordReturns.returns.clear()
    algo = (_tiny(epsilon_decay_duration=5)
            .env_runners(num_envs_per_env_runner=envs, rollout_fragment_length=fragment)
            .callbacks(RecordReturns)
            .build_algo())
    try:
        assert algo.runs_in_process()
        for _ in range(2):
            seen.clear()
            before = len(RecordReturns.returns)
            result = algo.train()
            env_runners = result["env_runners"]
            assert len(seen) > 1 and not any(reduce for _, reduce in seen)
            assert seen[-1][0] == {
                "num_env_steps_sampled_lifetime": env_runners["num_env_steps_sampled_lifetime"],
                "num_episodes_lifetime": env_runners["num_episodes_lifetime"]}
            assert env_runners["num_episodes_lifetime"] == len(RecordReturns.returns) > 0
            assert env_runners["episode_return_mean"] == pytest.approx(
                np.mean(RecordReturns.returns[before:][-100:]), rel=1e-5)
        assert result["learners"]["default_policy"]["q_loss"] >= 0
    finally:
        algo.stop()


def test_goal_probability_is_a_reported_metric(ray_session):
    from rllib_ext.envs.callbacks import GOAL_SCORED_KEY, GoalMetricsCallback

    config = _tiny(("rllib_ext/Goal-v0", {"scale": True})).callbacks(GoalMetricsCallback)
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert 0.0 <= result["env_runners"][GOAL_SCORED_KEY] <= 1.0


def _schedule(episodes, duration):
    """The reference's per-episode linear ε (1 -> 0.01 over ``duration`` episodes), in the
    float32 the module buffer holds."""
    return np.float32(1.0 - 0.99 * min(episodes, duration) / duration)


def test_epsilon_decays_from_the_first_episode_before_learning(ray_session):
    # Learning starts at 400 stored transitions: this iteration (64 env steps) has no update,
    # yet the env runner's ε already follows the episodes completed so far.
    algo = (_tiny(epsilon_decay_duration=50)
            .training(num_steps_sampled_before_learning_starts=400).build_algo())
    try:
        result = algo.train()
        epsilon = algo.env_runner.module.epsilon.item()
    finally:
        algo.stop()
    assert "default_policy" not in result.get("learners", {})  # no gradient step yet
    episodes = result["env_runners"]["num_episodes_lifetime"]
    assert episodes >= 2
    assert epsilon == _schedule(episodes, 50) < 1.0


def test_the_epsilon_metric_is_the_value_in_force_at_the_end_of_the_iteration(ray_session):
    """Not the mean over the iteration's updates: here ε falls from 1 to ~0.5 within the
    iteration, and the metric equals what the env runner ends the iteration with."""
    from rllib_ext.core.parameterised.parameterised_learner import EPSILON_KEY

    algo = (_tiny(epsilon_decay_duration=150)
            .env_runners(rollout_fragment_length=1)
            .reporting(min_sample_timesteps_per_iteration=200).build_algo())
    try:
        result = algo.train()
        runner_epsilon = algo.env_runner.module.epsilon.item()
    finally:
        algo.stop()
    episodes = result["env_runners"]["num_episodes_lifetime"]
    assert 10 < episodes < 150  # mid-decay: a mean over the iteration would be well above it
    metric = result["learners"]["default_policy"][EPSILON_KEY]
    assert metric == pytest.approx(runner_epsilon, abs=1e-6)
    assert metric == pytest.approx(_schedule(episodes, 150), abs=0.01 * 2)  # within 2 episodes


def _learner_weights(algo) -> list[dict]:
    return [r.get() for r in algo.learner_group.foreach_learner(
        lambda learner: learner.module["default_policy"].unwrapped().state_dict())]


def test_two_env_runners_and_two_learners(ray_session):
    """Two remote env runners share one ε, counted over both; two learners (gradients averaged
    over them in every sequential stage) end each iteration with identical weights."""
    algo = (_tiny(epsilon_decay_duration=50)
            .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
            .learners(num_learners=2, num_cpus_per_learner=0.5)
            .build_algo())
    try:
        before = _learner_weights(algo)[0]
        for _ in range(2):
            result = algo.train()
        learner_weights = _learner_weights(algo)
        runner_epsilons = algo.env_runner_group.foreach_env_runner(
            lambda er: er.module.epsilon.item(), local_env_runner=False)
    finally:
        algo.stop()
    assert np.isfinite(result["learners"]["default_policy"][Q_LOSS_KEY])
    first, second = learner_weights
    assert any(not torch.equal(before[k], first[k]) for k in before)
    for k in first:
        torch.testing.assert_close(first[k], second[k], rtol=0, atol=0, msg=k)
    episodes = result["env_runners"]["num_episodes_lifetime"]
    assert runner_epsilons == [_schedule(episodes, 50)] * 2


def test_one_minibatch_of_k_batches_equals_k_minibatches(ray_session):
    """The learner's chunked update (what PDQN's training_step uses) takes the same gradient
    steps, in the same order, as RLlib's minibatch iterator over the same rows."""
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    env = make(*PLATFORM[:1], **PLATFORM[1])
    config = _tiny(variant="mpdqn")
    size, k = config.train_batch_size_per_learner, 3
    rng = np.random.default_rng(0)
    rows = {
        Columns.OBS: rng.uniform(-1, 1, (k * size, 9)).astype(np.float32),
        Columns.NEXT_OBS: rng.uniform(-1, 1, (k * size, 9)).astype(np.float32),
        ACTION_INDEX: rng.integers(0, 3, k * size),
        ACTION_PARAMS: rng.uniform(-1, 1, (k * size, 3)).astype(np.float32),
        Columns.REWARDS: rng.uniform(0, 1, k * size).astype(np.float32),
        Columns.TERMINATEDS: (rng.uniform(0, 1, k * size) < 0.1).astype(np.float32),
    }
    weights = {}
    for minibatch_size in (size, None):
        torch.manual_seed(0)
        learner = config.build_learner(env=env)
        learner.update(
            batch=MultiAgentBatch({"default_policy": SampleBatch(dict(rows))}, k * size),
            minibatch_size=minibatch_size, num_epochs=1, shuffle_batch_per_epoch=False,
            timesteps={"num_env_steps_sampled_lifetime": 0},
        )
        weights[minibatch_size] = learner.module["default_policy"].unwrapped().state_dict()
    for name, tensor in weights[size].items():
        torch.testing.assert_close(weights[None][name], tensor, msg=name)
    # The updates did something: the Q network moved away from a fresh (same-seed) init.
    torch.manual_seed(0)
    fresh = config.build_learner(env=env).module["default_policy"].unwrapped().state_dict()
    assert any(not torch.equal(fresh[n], weights[None][n]) for n in fresh if "q_net" in n)


def test_vector_env_runner_fills_the_replay_with_every_env_step(ray_session):
    """num_envs_per_env_runner=2: each sub-env's episode chunks become transitions; nothing is
    lost or duplicated, and one gradient step per env step still runs."""
    algo = _tiny(variant="mpdqn").env_runners(num_envs_per_env_runner=2).build_algo()
    try:
        result = algo.train()
        sampled = int(result["num_env_steps_sampled_lifetime"])
        stored = len(algo.replay)
        trained = result["learners"]["__all_modules__"]["num_module_steps_trained_lifetime"]
    finally:
        algo.stop()
    assert sampled >= 64 and stored == sampled
    # Learning starts at 32 stored transitions; every later env step buys one batch of 16.
    assert trained == pytest.approx((sampled - 32) * 16, abs=2 * 16)


def test_step_stats_logged_once_per_update_call_report_the_same(ray_session, monkeypatch):
    """The learner logs its per-step stats once per update call (the latest value of each
    key); the iteration's results equal those of logging at every gradient step."""
    from rllib_ext.core.chunked_learner import ChunkedUpdateTorchLearner
    from rllib_ext.core.gradient_step import GradientStepLearner

    def learner_results(per_step: bool):
        if per_step:
            monkeypatch.setattr(ChunkedUpdateTorchLearner, "log_step_stats",
                                GradientStepLearner.log_step_stats)
        algo = (_tiny().env_runners(num_envs_per_env_runner=3, rollout_fragment_length=2)
                .debugging(seed=3).build_algo())
        try:
            results = [algo.train()["learners"]["default_policy"] for _ in range(2)]
        finally:
            algo.stop()
            monkeypatch.undo()
        return [{k: v for k, v in r.items() if "throughput" not in k} for r in results]

    buffered, per_step = learner_results(False), learner_results(True)
    assert "q_loss" in buffered[-1] and "gradients_q_global_norm" in buffered[-1]
    assert buffered == per_step
