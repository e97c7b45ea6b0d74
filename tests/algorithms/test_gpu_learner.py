"""One ``train()`` of every algorithm with its learner on a GPU (skipped without CUDA): every
tensor the learners and modules create follows the module's device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rllib_ext import ACEConfig, PADDPGConfig, PDQNConfig, PGConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA: a GPU learner cannot be tested on CPU")

PLATFORM = ("rllib_ext/Platform-v0", {"scale": True})


def _configs():
    off_policy = {"train_batch_size_per_learner": 16,
                  "num_steps_sampled_before_learning_starts": 32}
    return {
        "PG": PGConfig().environment("CartPole-v1").training(train_batch_size_per_learner=200),
        "PDQN": PDQNConfig().environment(PLATFORM[0], env_config=PLATFORM[1]).training(
            q_hiddens=[8], param_hiddens=[8], replay_capacity=500,
            param_loss_weighting="random_weighted", **off_policy),
        "PADDPG": PADDPGConfig().environment(PLATFORM[0], env_config=PLATFORM[1]).training(
            actor_hiddens=[8], critic_hiddens=[8], replay_capacity=500, **off_policy),
        "ACE": ACEConfig().environment("Pendulum-v1").training(
            causal_sample_size=40, causal_update_interval=0, reset_interval=0,
            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 2000},
            **off_policy),
    }


@pytest.mark.parametrize("algo_name", ["PG", "PDQN", "PADDPG", "ACE"])
def test_train_with_a_gpu_learner(ray_session, algo_name):
    config = (_configs()[algo_name].env_runners(num_env_runners=0)
              .learners(num_learners=0, num_gpus_per_learner=1)
              .rl_module(model_config={"fcnet_hiddens": [8]})
              .reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0))
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        learner = algo.learner_group._learner
        assert all(p.device.type == "cuda" for p in learner._params.values())
        assert result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"] > 0
        weights = algo.learner_group.get_weights()["default_policy"]
        assert all(np.isfinite(np.asarray(w)).all() for w in weights.values())
    finally:
        algo.stop()
