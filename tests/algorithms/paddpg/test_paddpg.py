"""PA-DDPG: the losses against hand computations, the hook on scores and parameters,
exploration and replay of the scores, each action-space form, checkpoints, Tune, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns

from rllib_ext import PADDPGConfig
from rllib_ext.algorithms.paddpg.paddpg_keys import ACTION_SCORES, CRITIC_LOSS_KEY
from rllib_ext.algorithms.paddpg.torch.paddpg_torch_learner import (
    compute_actor_loss,
    compute_critic_loss,
)
from rllib_ext.core.parameterised.parameterised_learner import (
    ACTION_INDEX,
    ACTION_PARAMS,
    EPSILON_BUFFER,
)
from rllib_ext.envs import make
from rllib_ext.hooks import ActionGradientHook
from tests.helpers.tiny_configs import PLATFORM
from tests.helpers.tiny_configs import tiny_paddpg as _tiny
from tests.helpers.toy_env import ToyHybridEnv


def _module(**training):
    env = make(*PLATFORM[:1], **PLATFORM[1])
    learner = _tiny(**training).build_learner(env=env)
    return learner, learner.module["default_policy"].unwrapped()


def _batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        Columns.OBS: torch.rand(n, 9, generator=g), Columns.NEXT_OBS: torch.rand(n, 9, generator=g),
        ACTION_INDEX: torch.zeros(n, dtype=torch.long),
        ACTION_SCORES: torch.rand(n, 3, generator=g), ACTION_PARAMS: torch.rand(n, 3, generator=g),
        Columns.REWARDS: torch.tensor([1.0, 0.5, 0.0, 2.0][:n]),
        Columns.TERMINATEDS: torch.tensor([0.0, 1.0, 0.0, 0.0][:n]),
    }


@pytest.mark.parametrize("reward_scale", [1.0, 0.5])
def test_critic_target_uses_the_target_actor_and_critic(ray_session, reward_scale):
    learner, module = _module(reward_scale=reward_scale)
    with torch.no_grad():
        module.critic.net[-1].weight.zero_()
        module.critic.net[-1].bias.fill_(0.5)          # Q(s, a) = 0.5 everywhere
        module.target_critic.net[-1].weight.zero_()
        module.target_critic.net[-1].bias.fill_(2.0)   # Q_target(s', a') = 2
    _, stats = compute_critic_loss(module, _batch(), learner.config)
    # y = c * r + 0.9 * (1 - done) * 2, r = [1, 0.5, 0, 2], done = [0, 1, 0, 0];
    # c = 1: [2.8, 0.5, 1.8, 3.8]; c = 0.5: [2.3, 0.25, 1.8, 2.8]. loss = mean((0.5 - y)^2).
    y = {1.0: np.array([2.8, 0.5, 1.8, 3.8]), 0.5: np.array([2.3, 0.25, 1.8, 2.8])}[reward_scale]
    expected = np.mean((0.5 - y) ** 2)
    assert stats[CRITIC_LOSS_KEY].item() == pytest.approx(expected)


def test_actor_loss_gradient_is_the_deterministic_policy_gradient(ray_session):
    """With the "none" strategy, d(actor_loss)/dtheta = -d mean_s Q(s, mu_theta(s)) / dtheta, and
    the actor loss leaves the critic's weights without gradient."""
    learner, module = _module(action_gradient_strategy="none")
    batch = _batch()
    actor_loss, _ = compute_actor_loss(module, batch, learner.config, ActionGradientHook("none"))
    actor_params = [p for p in module.actor.parameters() if p.requires_grad]
    ours = torch.autograd.grad(actor_loss, actor_params, allow_unused=True)
    direct = -module.critic(batch[Columns.OBS], *module.actor(batch[Columns.OBS])).mean()
    expected = torch.autograd.grad(direct, actor_params)
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b)
    critic_grads = torch.autograd.grad(actor_loss, list(module.critic.parameters()),
                                       allow_unused=True)
    assert all(g is None for g in critic_grads)


class _SpyHook(ActionGradientHook):
    def __init__(self):
        super().__init__("invert")
        self.calls = []

    def __call__(self, grad, values, low, high):
        self.calls.append((tuple(grad.shape), low, high))
        return super().__call__(grad, values, low, high)


def test_hook_is_applied_to_scores_and_parameters(ray_session):
    learner, module = _module()
    spy = _SpyHook()
    compute_actor_loss(module, _batch(), learner.config, spy)
    assert spy.calls == [((4, 3), -1.0, 1.0), ((4, 3), -1.0, 1.0)]


def test_inverting_changes_the_actor_gradient(ray_session):
    learner, module = _module()
    batch = _batch()
    with torch.no_grad():  # push the score head's outputs past the upper bound
        module.actor.score_head.bias.fill_(3.0)
    grads = {}
    for strategy in ("invert", "zero", "none"):
        actor_loss, _ = compute_actor_loss(module, batch, learner.config,
                                           ActionGradientHook(strategy))
        grads[strategy] = torch.autograd.grad(actor_loss, module.actor.score_head.bias)[0]
    # Past the bound the inverted gradient points back inside (or is 0): dQ/d(scores) > 0
    # components flip sign, "zero" drops them, "none" keeps them.
    none, inverted, zeroed = grads["none"], grads["invert"], grads["zero"]
    pushing_out = none < 0  # the loss's gradient is -dQ/da; < 0 means Q wants the score higher
    assert pushing_out.any()
    assert torch.all(inverted[pushing_out] > 0)
    assert torch.all(zeroed[pushing_out] == 0)


def test_exploration_outputs_scores_and_uniform_actions(ray_session):
    _, module = _module()
    getattr(module, EPSILON_BUFFER).fill_(1.0)
    out = module.forward_exploration({Columns.OBS: torch.rand(3000, 9)})
    scores, k = out[ACTION_SCORES], out[Columns.ACTIONS][0]
    assert scores.shape == (3000, 3) and scores.min() >= 0 and scores.max() < 1
    assert torch.equal(k, scores.argmax(-1))
    counts = torch.bincount(k, minlength=3).float() / 3000
    assert torch.all((counts - 1 / 3).abs() < 0.05)
    getattr(module, EPSILON_BUFFER).fill_(0.0)
    obs = torch.rand(5, 9)
    greedy_scores, _ = module.actor(obs)
    torch.testing.assert_close(module.forward_exploration({Columns.OBS: obs})[ACTION_SCORES],
                               greedy_scores)


@pytest.mark.parametrize("env, training", [
    (("rllib_ext/Platform-v0", {"scale": True}), {}),                              # flat tuple
    (("rllib_ext/Goal-v0", {"scale": True, "flat_actions": False}), {}),             # nested
    (ToyHybridEnv, {"param_layout": [1, 0, 1], "exploration_noise": "uniform"}),   # flat Box
])
def test_each_action_space_form_trains_and_replays_the_scores(ray_session, env, training):
    # epsilon_final=1: every step explores, so every stored score is a U(0, 1) draw.
    algo = _tiny(env, epsilon_final=1.0, **training).build_algo()
    try:
        before = {k: v.clone() for k, v in algo.get_module().actor.state_dict().items()}
        result = algo.train()
        after = algo.get_module().actor.state_dict()
        scores = algo.replay.columns[ACTION_SCORES][: len(algo.replay)]
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    assert np.isfinite(learner[CRITIC_LOSS_KEY]) and np.isfinite(learner["actor_loss"])
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert scores.shape[1] == algo.replay["default_policy"].layout.num_actions
    assert np.all((scores >= 0) & (scores < 1)) and scores.std() > 0.1
    np.testing.assert_array_equal(
        algo.replay.columns[ACTION_INDEX][: len(algo.replay)], scores.argmax(-1))


def test_squash_bounds_scores_and_parameters(ray_session):
    _, module = _module(action_gradient_strategy="squash")
    scores, params = module.actor(torch.randn(64, 9) * 100)
    assert scores.abs().max() <= 1.0 and params.abs().max() <= 1.0


def test_checkpoint_round_trip_and_tune(ray_session, tmp_path):
    from ray import tune

    algo = _tiny(initial_params=[-0.8, -0.97222, 0.86047]).build_algo()
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (16, 9)), dtype=torch.float32)
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        weights = algo.get_module().state_dict()
        actions = algo.get_module().forward_inference({Columns.OBS: obs})[Columns.ACTIONS]
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        new = restored.get_module()
        for k, v in weights.items():
            torch.testing.assert_close(v, new.state_dict()[k], rtol=0, atol=0)
        again = new.forward_inference({Columns.OBS: obs})[Columns.ACTIONS]
        assert torch.equal(actions[0], again[0])
    finally:
        restored.stop()
    grid = tune.Tuner(
        "PADDPG", param_space=_tiny(),
        run_config=tune.RunConfig(storage_path=str(tmp_path), stop={"training_iteration": 1},
                                  verbose=0),
    ).fit()
    assert grid.errors == [] and len(grid) == 1


def test_remote_env_runner_gets_the_learner_weights(ray_session):
    algo = _tiny().env_runners(num_env_runners=1).build_algo()
    try:
        algo.train()
        learner_w = algo.learner_group.get_weights()["default_policy"]
        runner_w = algo.env_runner_group.foreach_env_runner(
            lambda er: er.module.get_state(inference_only=True), local_env_runner=False)[0]
    finally:
        algo.stop()
    assert set(runner_w) and not any(k.startswith(("critic", "target")) for k in runner_w)
    for k, v in runner_w.items():
        np.testing.assert_allclose(np.asarray(v), np.asarray(learner_w[k]))


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c.training(lr=0.1), r"lr=0.1 is not used.*lr_actor=..., lr_critic=..."),
    (lambda c: c.training(tau_actor=0.0), r"tau_actor=0.0 must be a finite number in \(0, 1\]"),
    (lambda c: c.training(critic_hiddens=[64, -1]),
     "critic_hiddens=.*list of positive integer layer widths"),
    (lambda c: c.training(lr_critic=-1e-3), "lr_critic=-0.001 must be a finite number > 0"),
    (lambda c: c.training(exploration_noise="pink"), "exploration_noise='pink'"),
    (lambda c: c.training(initial_params=[0.0, 0.0]), "initial_params has 2 values"),
    (lambda c: (c.environment("CartPole-v1"), setattr(c, "env_config", {})),
     r"Unsupported action space Discrete\(2\)"),
])
def test_config_validation(mutate, match):
    config = PADDPGConfig().environment("rllib_ext/Platform-v0", env_config={"scale": True})
    mutate(config)
    with pytest.raises(ValueError, match=match):
        config.validate()
