"""A recurrent (LSTM) PG policy: RLlib's zero-padded sequences reproduce a step-by-step rollout
across episode boundaries and max_seq_len cuts, the loss ignores the padding, and it trains on
the velocity-masked CartPole."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.torch_utils import convert_to_torch_tensor

from rllib_ext import PGConfig
from rllib_ext.algorithms.pg.advantages import add_advantages_to_episodes
from rllib_ext.algorithms.pg.pg_learner import ADVANTAGES

MASKED = "rllib_ext/CartPoleNoVelocity-v0"
LSTM = {"fcnet_hiddens": [8], "use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 7}


def _config(**training):
    return (PGConfig().environment(MASKED)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .training(**{"train_batch_size_per_learner": 100, **training})
            .rl_module(model_config=LSTM).debugging(seed=0))


def _step_by_step_logits(module, episode) -> torch.Tensor:
    """The policy's logits along ``episode``, one step at a time from the zero state."""
    state = {k: torch.as_tensor(v)[None] for k, v in module.get_initial_state().items()}
    logits = []
    with torch.no_grad():
        for obs in episode.get_observations()[:-1]:
            out = module.forward_inference({Columns.OBS: torch.as_tensor(obs)[None, None],
                                            Columns.STATE_IN: state})
            logits.append(out[Columns.ACTION_DIST_INPUTS][0, 0])
            state = out[Columns.STATE_OUT]
    return torch.stack(logits)


def test_padded_sequences_match_a_step_by_step_rollout(ray_session):
    algo = _config().build_algo()
    try:
        episodes = algo.env_runner_group.local_env_runner.sample(num_episodes=4, explore=True)
        assert all(e.is_done for e in episodes) and max(len(e) for e in episodes) > 7
        add_advantages_to_episodes(episodes, gamma=0.99, baseline="mean", normalize=True)
        learner = algo.learner_group._learner
        batch = learner._learner_connector(rl_module=learner.module, batch={},
                                           episodes=episodes, shared_data={},
                                           metrics=learner.metrics)["default_policy"]
        batch = convert_to_torch_tensor(dict(batch))
        module = learner.module["default_policy"].unwrapped()
        with torch.no_grad():
            out = module.forward_train(batch)
        mask = batch[Columns.LOSS_MASK]
        # Sequences of at most max_seq_len = 7 steps, zero-padded; each episode starts from
        # the zero state and later cuts start from the state the env runner recorded.
        assert mask.shape[1] == 7 and mask.sum() == sum(len(e) for e in episodes) < mask.numel()
        expected = torch.cat([_step_by_step_logits(module, e) for e in episodes])
        torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS][mask], expected, atol=1e-5,
                                   rtol=1e-5)
        # The loss is the mean over the real steps only.
        loss = learner.compute_loss_for_module(module_id="default_policy",
                                               config=learner.config, batch=batch,
                                               fwd_out=out)
        dist = module.get_train_action_dist_cls().from_logits(expected)
        actions = torch.as_tensor(np.concatenate([e.get_actions() for e in episodes]))
        advantages = torch.as_tensor(np.concatenate(
            [e.get_extra_model_outputs(ADVANTAGES) for e in episodes]))
        torch.testing.assert_close(loss, -(dist.logp(actions) * advantages).mean(), atol=1e-6,
                                   rtol=1e-5)
    finally:
        algo.stop()


def test_recurrent_policy_trains_on_masked_cartpole(ray_session):
    algo = _config(lr=0.01).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    assert np.isfinite(result["learners"]["default_policy"]["policy_loss"])
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 200


@pytest.mark.parametrize("training, match", [
    ({"baseline": "optimal", "normalize_advantages": False}, "baseline='optimal'"),
    ({"baseline": "value"}, "baseline='value'"),
    ({"off_policy_reuse": 1}, "off_policy_reuse=1"),
])
def test_recurrent_policy_rejects_per_step_estimators(training, match):
    with pytest.raises(ValueError, match=rf"recurrent policy.*{match}"):
        _config(**training).validate()


def test_masked_cartpole_drops_the_velocities():
    import gymnasium as gym

    import rllib_ext

    rllib_ext.register()
    full, masked = gym.make("CartPole-v1"), gym.make(MASKED)
    obs_full, _ = full.reset(seed=3)
    obs_masked, _ = masked.reset(seed=3)
    np.testing.assert_array_equal(obs_masked, obs_full[[0, 2]])
    for _ in range(5):
        obs_full, r1, *_ = full.step(1)
        obs_masked, r2, *_ = masked.step(1)
        np.testing.assert_array_equal(obs_masked, obs_full[[0, 2]])
        assert r1 == r2
    assert masked.observation_space.shape == (2,) and masked.spec.max_episode_steps == 500
