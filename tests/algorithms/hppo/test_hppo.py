"""H-PPO: the two clipped surrogates by hand, training on Moving, checkpoints, Tune, several
env runners and learners, and config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray import tune
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns

from rllib_ext import HPPOConfig
from rllib_ext.algorithms.hppo.hppo_keys import (
    CONTINUOUS_POLICY_LOSS_KEY,
    DISCRETE_POLICY_LOSS_KEY,
)
from rllib_ext.algorithms.hppo.torch.hppo_torch_learner import (
    clipped_surrogate,
    hybrid_surrogates,
)

MOVING = "rllib_ext/Moving-v0"
LAYOUT = [1, 1, 0]


class _Parts:
    """A stand-in distribution with given (log pi(k), log pi(x | k)) per sample."""

    def __init__(self, logp_k, logp_x):
        self.parts = torch.tensor(logp_k), torch.tensor(logp_x)

    def logp_parts(self, actions):
        return self.parts


def test_clipped_surrogate_by_hand():
    ratio, adv = torch.tensor([1.5, 0.5, 1.5, 0.5]), torch.tensor([2.0, 2.0, -1.0, -1.0])
    # min(rA, clip(r, 0.8, 1.2)A): 2.4 (clipped), 1.0, -1.5, -0.8 (clipped)
    torch.testing.assert_close(clipped_surrogate(ratio, adv, 0.2),
                               torch.tensor([2.4, 1.0, -1.5, -0.8]))


@pytest.mark.parametrize("advantage, separate, joint", [
    # r_k = 1.5, r_x = 0.5 (joint r = 0.75), clip 0.2.
    (2.0, 2.4 + 1.0, 1.5),     # separate: min(3, 2.4) + min(1, 1.6); joint: min(1.5, 1.6)
    (-1.0, -1.5 - 0.8, -0.8),  # separate: min(-1.5, -1.2) + min(-0.5, -0.8); joint: -0.8
])
def test_two_surrogates_against_the_joint_one(advantage, separate, joint):
    old = _Parts([np.log(0.2)], [np.log(0.4)])
    new = _Parts([np.log(0.3)], [np.log(0.2)])
    adv = torch.tensor([advantage])
    got, parts = hybrid_surrogates(new, old, None, adv, clip_param=0.2, surrogate="separate")
    assert got.item() == pytest.approx(separate, abs=1e-6)
    assert parts["clipped_k"].item() == 1.0 and parts["clipped_x"].item() == 1.0
    got, _ = hybrid_surrogates(new, old, None, adv, clip_param=0.2, surrogate="joint")
    assert got.item() == pytest.approx(joint, abs=1e-6)


def _tiny(**training):
    return (
        HPPOConfig()
        .environment(MOVING)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(**{"param_layout": LAYOUT, "train_batch_size_per_learner": 200,
                     "minibatch_size": 100, "num_epochs": 2, **training})
        .rl_module(model_config={"fcnet_hiddens": [16], "vf_share_layers": True})
        .debugging(seed=0)
    )


def _greedy(algo, obs):
    """(argmax action, mean parameters) of the greedy policy at ``obs``."""
    module = algo.get_module()
    with torch.no_grad():
        inputs = module.forward_inference({Columns.OBS: torch.as_tensor(obs)})[
            Columns.ACTION_DIST_INPUTS]
    dist = module.get_inference_action_dist_cls().from_logits(inputs)
    k, params = dist.to_deterministic().sample()
    return k.numpy(), params.numpy()


@pytest.mark.parametrize("surrogate", ["separate", "joint"])
def test_trains_on_moving(ray_session, surrogate):
    algo = _tiny(surrogate=surrogate).build_algo()
    try:
        before = {k: v.clone() for k, v in algo.get_module().state_dict().items()}
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["policy_loss"]) and np.isfinite(learner["vf_loss"])
        assert (DISCRETE_POLICY_LOSS_KEY in learner) == (surrogate == "separate")
        assert (CONTINUOUS_POLICY_LOSS_KEY in learner) == (surrogate == "separate")
        after = algo.get_module().state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
    finally:
        algo.stop()


def test_greedy_evaluation_runs(ray_session):
    """RLlib's evaluation samples greedy actions (explore=False), whose log-prob its
    GetActions connector records: the deterministic hybrid distribution gives zeros."""
    algo = _tiny().evaluation(evaluation_interval=1, evaluation_duration=2,
                              evaluation_duration_unit="episodes").build_algo()
    try:
        result = algo.train()
        assert result["evaluation"]["env_runners"]["num_episodes"] >= 2
    finally:
        algo.stop()


def test_checkpoint_round_trip_gives_the_same_greedy_actions(ray_session, tmp_path):
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 10)).astype(np.float32)
    algo = _tiny().build_algo()
    try:
        algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        expected = _greedy(algo, obs)
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        got = _greedy(restored, obs)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        restored.train()
    finally:
        restored.stop()


def test_tune_runs_hppo_by_name(ray_session, tmp_path):
    tuner = tune.Tuner("HPPO", param_space=_tiny(),
                       run_config=tune.RunConfig(stop={"training_iteration": 1},
                                                 storage_path=str(tmp_path), verbose=0))
    (result,) = tuner.fit()
    assert result.error is None and result.metrics["training_iteration"] == 1


def test_two_env_runners_and_two_learners_stay_identical(ray_session):
    algo = (_tiny().env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
            .learners(num_learners=2, num_cpus_per_learner=0.5).build_algo())
    try:
        algo.train()
        first, second = [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: learner.module["default_policy"].unwrapped().state_dict())]
    finally:
        algo.stop()
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.training(entropy_coeff=0.01), r"entropy_coeff=0.01 is not used by H-PPO"),
    (lambda c: c.training(surrogate="both"), r"surrogate='both' must be one of"),
    (lambda c: c.training(sigma="learned"), r"sigma='learned' must be one of"),
    (lambda c: c.training(initial_sigma=0.0), r"initial_sigma=0.0 must be a finite number > 0"),
    (lambda c: c.training(entropy_coeff_discrete=-1),
     r"entropy_coeff_discrete=-1 must be a finite number >= 0"),
    (lambda c: c.training(param_layout=None), r"ambiguous; set training\(param_layout"),
    (lambda c: c.environment("CartPole-v1"), r"H-PPO needs a parameterised action space"),
], ids=["entropy_coeff", "surrogate", "sigma", "initial_sigma", "entropy_negative",
        "no-layout", "discrete-env"])
def test_config_validation_names_the_fix(change, match):
    with pytest.raises(ValueError, match=match):
        change(_tiny()).validate()
