"""PG on parameterised action spaces: H-PPO's hybrid distribution in PG's module, the
variance-optimal baseline's per-step scores over tuple actions, training with every baseline
and with importance-sampled reuse, checkpoints, and validation that names the fix."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns

import rllib_ext.envs
from rllib_ext import PGConfig
from rllib_ext.algorithms.pg.torch.score_gradients import per_trajectory_score_sums
from rllib_ext.core.parameterised.torch.hybrid_distribution import TorchHybridDistribution

PLATFORM = ("rllib_ext/Platform-v0", {"scale": True}, None)  # Tuple(Discrete(3), Box x 3)
MOVING = ("rllib_ext/Moving-v0", {}, [1, 1, 0])  # Tuple(Discrete(3), Box(2)), brake owns none


def _config(env, **training):
    env_id, env_config, layout = env
    return (
        PGConfig()
        .environment(env_id, env_config=env_config)
        .env_runners(num_env_runners=0)
        .training(**{"param_layout": layout, "train_batch_size_per_learner": 100, **training})
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .debugging(seed=0)
    )


def _module_and_env(env, **training):
    config = _config(env, **training)
    gym_env = rllib_ext.envs.make(env[0], **env[1])
    return config.get_rl_module_spec(env=gym_env).build(), gym_env


def _stack(samples):
    """A list of (possibly tuple) actions -> one structure of batch-first tensors."""
    return tree.map_structure(lambda *xs: torch.as_tensor(np.stack(xs)), *samples)


@pytest.mark.parametrize("sigma, learned", [("fixed", False), ("state_independent", True),
                                             ("state_dependent", False)])
def test_module_builds_the_hybrid_distribution_with_its_sigma(sigma, learned):
    module, env = _module_and_env(PLATFORM, sigma=sigma, initial_sigma=0.5,
                                  logp_mode="all")
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(4)]))
    inputs = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert inputs.shape == (4, 3 + 3 + 3)  # [3 logits | 3 means | 3 log-stds]
    dist = module.get_train_action_dist_cls().from_logits(inputs)
    assert isinstance(dist, TorchHybridDistribution) and dist.logp_mode == "all"
    assert isinstance(module.log_std, torch.nn.Parameter) == learned
    if sigma != "state_dependent":
        torch.testing.assert_close(dist.normal.scale, torch.full((4, 3), 0.5))


@pytest.mark.parametrize("env", [PLATFORM, MOVING], ids=["platform", "moving"])
def test_vectorised_scores_over_tuple_actions_match_a_loop_of_backward_passes(env):
    """The variance-optimal baseline's per-trajectory scores for a hybrid policy (both logp
    parts, the learned sigma included) equal one backward pass per trajectory."""
    module, gym_env = _module_and_env(env)
    rng = np.random.default_rng(0)
    gym_env.action_space.seed(0)
    n = 9
    obs = torch.as_tensor(rng.uniform(-1, 1, (n, *gym_env.observation_space.shape)),
                          dtype=torch.float32)
    actions = _stack([gym_env.action_space.sample() for _ in range(n)])
    traj = torch.tensor([0] * 4 + [1] * 2 + [2] * 3)
    coef = torch.as_tensor(rng.normal(size=n), dtype=torch.float32)
    sums = per_trajectory_score_sums(module, obs, actions, traj, 3, {"h": coef})["h"]
    assert "log_std" in sums
    dist_cls = module.get_train_action_dist_cls()
    for i in range(3):
        module.zero_grad()
        mask = traj == i
        out = module.forward_train({Columns.OBS: obs[mask]})
        chosen = tree.map_structure(lambda x, m=mask: x[m], actions)
        logp = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).logp(chosen)
        (logp * coef[mask]).sum().backward()
        for name, p in module.named_parameters():
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(sums[name][i], grad, rtol=1e-4, atol=1e-5)


def _greedy(algo, obs):
    """The greedy actions at ``obs``, flattened: [k, parameters of action 0, ...]."""
    module = algo.get_module()
    with torch.no_grad():
        inputs = module.forward_inference({Columns.OBS: torch.as_tensor(obs)})[
            Columns.ACTION_DIST_INPUTS]
    actions = module.get_inference_action_dist_cls().from_logits(inputs).to_deterministic(
        ).sample()
    return [part.numpy() for part in tree.flatten(actions)]


@pytest.mark.parametrize("training", [
    {"baseline": "mean"},
    {"baseline": "optimal", "normalize_advantages": False},
    {"baseline": "value", "gae_lambda": 0.95},
    {"off_policy_reuse": 1, "importance_sampling": "per_decision"},
], ids=["mean", "optimal", "value-gae", "is-reuse"])
def test_trains_on_moving(ray_session, training):
    algo = _config(MOVING, **training).build_algo()
    try:
        before = algo.get_module().log_std.detach().clone()
        for _ in range(2):  # the second iteration has a batch to reuse
            learner = algo.train()["learners"]["default_policy"]
        assert np.isfinite(learner["policy_loss"]) and np.isfinite(learner["policy_entropy"])
        assert not torch.equal(algo.get_module().log_std.detach(), before)  # sigma is learned
    finally:
        algo.stop()


def test_greedy_evaluation_and_checkpoint_round_trip(ray_session, tmp_path):
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 9)).astype(np.float32)
    # With PG's greedy evaluation (explore=False) in the same iterations.
    algo = _config(PLATFORM).evaluation(evaluation_interval=1, evaluation_duration=3,
                                        evaluation_duration_unit="episodes").build_algo()
    try:
        result = algo.train()
        assert result["evaluation"]["env_runners"]["num_episodes"] >= 3
        path = algo.save_to_path(tmp_path / "ckpt")
        expected = _greedy(algo, obs)
        log_std = algo.get_module().log_std.detach().clone()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        torch.testing.assert_close(restored.get_module().log_std.detach(), log_std, rtol=0,
                                   atol=0)
        got = _greedy(restored, obs)
        assert len(got) == len(expected) == 4  # Platform: k and one parameter per action
        for part, expected_part in zip(got, expected, strict=True):
            np.testing.assert_array_equal(part, expected_part)
    finally:
        restored.stop()


class _NoParameterEnv(gym.Env):
    """Tuple(Discrete(2), Box(0)): a parameterised form whose actions own no parameter."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (0,))))

    def __init__(self, config=None):
        pass


@pytest.mark.parametrize("env, training, model_config, match", [
    (MOVING, {"sigma": "learned"}, {},
     r"sigma='learned' must be one of \['fixed', 'state_independent', 'state_dependent'\]"),
    (MOVING, {"initial_sigma": 0.0}, {}, r"initial_sigma=0.0 must be .*> 0"),
    (("rllib_ext/Moving-v0", {}, None), {}, {},
     r"PG needs a parameterised action space here\..*param_layout"),
    (MOVING, {"param_layout": [1, 1, 1]}, {}, r"PG needs a parameterised action space here"),
    (PLATFORM, {}, {"use_lstm": True}, r"for Tuple\(Discrete\(3\).* remove use_lstm"),
], ids=["sigma", "initial-sigma", "no-layout", "wrong-layout", "lstm"])
def test_validation_names_the_fix(env, training, model_config, match):
    config = _config(env, **training).rl_module(
        model_config={"fcnet_hiddens": [8], **model_config})
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_a_space_without_parameters_is_refused():
    config = PGConfig().environment(_NoParameterEnv).training(param_layout=[0, 0])
    with pytest.raises(ValueError, match=r"has no continuous parameters; use a Discrete"):
        config.validate()
