"""Evaluation draws from random streams of its own: evaluating never changes training.

The mixin by hand (what evaluation draws, what training draws after it), then the issue's
check on real algorithms: with the same seed, MP-DQN and ACE evaluated every 2 and every 10
iterations hold identical weights at the same env step (without the mixin they differed).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rllib_ext.core.random_streams import (
    EVALUATION_SEED_OFFSET,
    SeparateEvaluationRandomness,
)


class _Evaluating:
    """Stands in for ``Algorithm``: its evaluation draws from all three global generators."""

    def __init__(self, seed, parallel=False):
        self.config = type("Config", (), {"seed": seed,
                                          "evaluation_parallel_to_training": parallel})()

    def evaluate(self):
        return (random.random(), float(np.random.random()), float(torch.rand(1)))


class _Algo(SeparateEvaluationRandomness, _Evaluating):
    pass


def _draws():
    return (random.random(), float(np.random.random()), float(torch.rand(1)))


def _seeded_draws(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return _draws()


def test_evaluation_leaves_the_training_stream_and_continues_its_own():
    seed = 7
    random.seed(seed + EVALUATION_SEED_OFFSET)
    np.random.seed(seed + EVALUATION_SEED_OFFSET)
    torch.manual_seed(seed + EVALUATION_SEED_OFFSET)
    expected_eval = [_draws(), _draws()]
    expected_training = [_seeded_draws(123), _draws(), _draws()]

    algo = _Algo(seed)
    _seeded_draws(123)  # the training stream, at a known state
    training = [expected_training[0]]
    evaluations = [algo.evaluate()]
    training.append(_draws())
    evaluations.append(algo.evaluate())
    training.append(_draws())
    assert training == expected_training          # as if no evaluation had run
    assert evaluations == expected_eval           # seed + 1e6, continued across evaluations


def test_without_a_seed_evaluation_still_leaves_the_training_stream():
    algo = _Algo(None)
    expected = [_seeded_draws(5), _draws()]
    got = [_seeded_draws(5)]
    algo.evaluate()
    got.append(_draws())
    assert got == expected


def test_parallel_evaluation_is_left_alone():
    algo = _Algo(7, parallel=True)
    expected = _seeded_draws(5)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    assert algo.evaluate() == expected  # it drew from the training stream, as RLlib does


def _pdqn(interval):
    from rllib_ext import PDQNConfig

    return (PDQNConfig().environment("rllib_ext/Platform-v0", env_config={"scale": True})
            .training(variant="mpdqn", train_batch_size_per_learner=16, q_hiddens=[8],
                      param_hiddens=[8], num_steps_sampled_before_learning_starts=32,
                      exploration_noise="ou", replay_capacity=500)
            .env_runners(num_env_runners=0, rollout_fragment_length=1))


def _ace(interval):
    from rllib_ext import ACEConfig

    return (ACEConfig().environment("Pendulum-v1")
            .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                      causal_worker_num_cpus=0)
            .rl_module(model_config={"fcnet_hiddens": [8]})
            .env_runners(num_env_runners=0))


@pytest.mark.parametrize("make", [_pdqn, _ace], ids=["PDQN", "ACE"])
def test_evaluating_every_2_or_every_10_iterations_trains_the_same_weights(ray_session, make):
    runs = {}
    for interval in (2, 10):
        algo = (make(interval)
                .reporting(min_sample_timesteps_per_iteration=40, min_time_s_per_iteration=0)
                # An exploring evaluation, which draws random numbers (greedy is the default).
                .evaluation(evaluation_interval=interval, evaluation_duration=2,
                            evaluation_duration_unit="episodes",
                            evaluation_config={"explore": True})
                .debugging(seed=0)
                .build_algo())
        try:
            evaluated = 0
            for _ in range(10):
                result = algo.train()
                evaluated += "evaluation" in result and algo.iteration % interval == 0
            weights = {f"{m}/{k}": np.asarray(v) for m, module in
                       algo.learner_group.get_weights().items() for k, v in module.items()}
            runs[interval] = (result["num_env_steps_sampled_lifetime"], weights, evaluated)
        finally:
            algo.stop()
    (steps2, weights2, evaluated2), (steps10, weights10, evaluated10) = runs[2], runs[10]
    assert (evaluated2, evaluated10) == (5, 1)
    assert steps2 == steps10
    assert weights2.keys() == weights10.keys()
    for key in weights2:
        np.testing.assert_array_equal(weights2[key], weights10[key], err_msg=key)


@pytest.mark.parametrize("name", ["PGConfig", "PDQNConfig", "PADDPGConfig", "ACEConfig"])
def test_evaluation_is_greedy_unless_the_user_says_otherwise(name):
    """RLlib's evaluation explores by default; the "greedy evaluation" the CLI reports must
    not (for MP-DQN it took ε = 0.01 random actions)."""
    import rllib_ext

    config = getattr(rllib_ext, name)()
    assert config.explore is True
    assert config.get_evaluation_config_object().explore is False
    config.evaluation(evaluation_config={"explore": True})
    assert config.get_evaluation_config_object().explore is True
