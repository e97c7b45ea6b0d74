"""PGConfig defaults and validate() errors: each names the bad value and the fix."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rllib_ext import PG, PGConfig
from rllib_ext.algorithms.pg.torch.default_pg_torch_rl_module import DefaultPGTorchRLModule
from rllib_ext.algorithms.pg.torch.pg_torch_learner import PGTorchLearner


class MultiDiscreteActionEnv(gym.Env):
    """Valid env whose action space PG cannot handle."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def __init__(self, config=None):
        pass

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}


def test_defaults_and_components():
    config = PGConfig()
    assert config.algo_class is PG
    assert config.batch_mode == "complete_episodes"
    assert config.baseline == "mean" and config.normalize_advantages is True
    assert config.reward_to_go is True and config.off_policy_reuse == 0
    assert config.importance_sampling == "per_decision"
    assert config.is_clip is None and config.is_self_normalize is False
    assert config.get_default_learner_class() is PGTorchLearner
    assert config.get_default_rl_module_spec().module_class is DefaultPGTorchRLModule
    assert config.model_config["free_log_std"] is True


def test_training_sets_pg_and_base_knobs():
    config = PGConfig().training(baseline="time_mean", normalize_advantages=False, lr=0.01)
    assert (config.baseline, config.normalize_advantages, config.lr) == ("time_mean", False, 0.01)
    config = PGConfig().training(
        off_policy_reuse=3, importance_sampling="per_step", is_clip=2.0, is_self_normalize=True,
        reward_to_go=False,
    )
    assert (config.off_policy_reuse, config.importance_sampling, config.is_clip) == (
        3, "per_step", 2.0,
    )
    assert config.is_self_normalize is True and config.reward_to_go is False


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c: c.training(baseline="median"), r"baseline='median'.*'none', 'mean'"),
        (lambda c: c.training(normalize_advantages="yes"), "True or False"),
        (lambda c: c.training(gamma=1.5), r"gamma=1.5 .*training\(gamma=0.99\)"),
        (lambda c: c.training(lr=0.0), r"lr=0.0 must be a finite number > 0"),
        (lambda c: c.training(train_batch_size_per_learner=0),
         r"train_batch_size_per_learner=0 must be an integer >= 1"),
        (lambda c: c.training(num_epochs=4), "num_epochs=4.*importance weights"),
        (
            lambda c: c.env_runners(batch_mode="truncate_episodes"),
            r"batch_mode='truncate_episodes'.*batch_mode='complete_episodes'",
        ),
        (lambda c: c.rl_module(model_config={"use_attention": True}), "remove use_attention"),
        (lambda c: c.rl_module(model_config={"use_lstm": True}).training(baseline="value"),
         r"recurrent policy.*baseline=.value."),
        (lambda c: c.environment(MultiDiscreteActionEnv),
         r"Discrete, 1-D Box and parameterised Tuple\(Discrete\(K\), Box...\) action spaces, "
         r"got MultiDiscrete"),
        (lambda c: c.training(reward_to_go="yes"), r"reward_to_go='yes' must be True or False"),
        (lambda c: c.training(gae_lambda=0.9), r"gae_lambda=0.9 needs a learned value function"),
        (lambda c: c.training(baseline="value", gae_lambda=1.5), r"gae_lambda=1.5 must be"),
        (lambda c: c.training(baseline="value", value_gradient_steps=0),
         r"value_gradient_steps=0 must be an integer >= 1"),
        (lambda c: c.training(baseline="value", value_lr=-1.0), r"value_lr=-1.0 must be"),
        (lambda c: c.training(baseline="value", off_policy_reuse=1),
         r"baseline='value' fits V to the reward-to-go of fresh data"),
        (
            lambda c: c.training(baseline="optimal"),
            r"baseline='optimal', normalize_advantages=False",
        ),
        (lambda c: c.training(off_policy_reuse=-1), r"off_policy_reuse=-1 must be an integer"),
        (lambda c: c.training(off_policy_reuse=1.5), r"off_policy_reuse=1.5 must be an integer"),
        (
            lambda c: c.training(off_policy_reuse=1, importance_sampling="weighted"),
            r"importance_sampling='weighted'.*'trajectory', 'per_decision', 'per_step'",
        ),
        (
            lambda c: c.training(off_policy_reuse=1, is_clip=0.0),
            r"is_clip=0.0 must be None or a finite number > 0",
        ),
        (lambda c: c.training(is_clip=5.0), r"off_policy_reuse=0; set off_policy_reuse >= 1"),
        (
            lambda c: c.training(is_self_normalize=True),
            r"off_policy_reuse=0; set off_policy_reuse >= 1",
        ),
        (
            lambda c: c.training(off_policy_reuse=2, reward_to_go=False),
            r"'per_decision'.*set reward_to_go=True or use importance_sampling='trajectory'",
        ),
        (
            # per_decision needs complete episodes: the batch_mode error names both.
            lambda c: c.training(off_policy_reuse=2).env_runners(batch_mode="truncate_episodes"),
            r"importance_sampling='per_decision'.*batch_mode='complete_episodes'",
        ),
        (
            lambda c: c.training(off_policy_reuse=1, importance_sampling="trajectory").learners(
                num_learners=2
            ),
            r"num_learners=2.*num_learners=1\).*importance_sampling='per_step'",
        ),
    ],
)
def test_validate_rejects_with_fix(mutate, match):
    config = PGConfig().environment("CartPole-v1")
    mutate(config)
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_valid_configs_pass():
    PGConfig().environment("CartPole-v1").validate()
    PGConfig().environment("Pendulum-v1").training(baseline="none").validate()
    PGConfig().environment("CartPole-v1").training(
        baseline="optimal", normalize_advantages=False, off_policy_reuse=2,
        importance_sampling="trajectory", is_clip=10.0, is_self_normalize=True,
        reward_to_go=False,
    ).validate()
    # per_step ratios are local to a step: fine with episodes split across learners.
    PGConfig().environment("CartPole-v1").training(
        off_policy_reuse=1, importance_sampling="per_step"
    ).learners(num_learners=2).validate()
