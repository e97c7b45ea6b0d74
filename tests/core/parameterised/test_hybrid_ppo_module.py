"""The hybrid actor-critic module trained by RLlib's own PPO (the "plug into an existing
pipeline" path of H-PPO): RLlib's PPO config, learner and connectors, our distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_ext.core.parameterised.torch.hybrid_distribution import TorchHybridDistribution
from rllib_ext.core.parameterised.torch.hybrid_policy import hybrid_options
from rllib_ext.core.parameterised.torch.hybrid_ppo_rl_module import HybridPPOTorchRLModule

MOVING_LAYOUT = [1, 1, 0]  # accelerate and turn own one parameter each, brake none


def _ppo(**model_config):
    return (
        PPOConfig()
        .environment("rllib_ext/Moving-v0")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=2)
        .rl_module(rl_module_spec=RLModuleSpec(
            module_class=HybridPPOTorchRLModule,
            model_config={"fcnet_hiddens": [16], "param_layout": MOVING_LAYOUT,
                          **model_config}))
        .debugging(seed=0)
    )


@pytest.mark.parametrize("sigma", ["fixed", "state_independent", "state_dependent"])
def test_rllibs_ppo_trains_the_module_on_moving(ray_session, sigma):
    algo = _ppo(hybrid_sigma=sigma).build_algo()
    try:
        module = algo.get_module()
        log_std = module.log_std.detach().clone()
        weights = {k: v.clone() for k, v in module.state_dict().items()}
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["entropy"]) and np.isfinite(learner["policy_loss"])
        module = algo.get_module()
        assert issubclass(module.get_train_action_dist_cls(), TorchHybridDistribution)
        assert any(not torch.equal(v, module.state_dict()[k]) for k, v in weights.items())
        # sigma 0.3 stays fixed; the state-independent one learns.
        assert torch.equal(module.log_std, log_std) == (sigma != "state_independent")
        torch.testing.assert_close(log_std, torch.full((2,), float(np.log(0.3))))
    finally:
        algo.stop()


def test_the_env_runners_logp_is_the_distributions_logp_of_the_stored_action(ray_session):
    algo = _ppo().build_algo()
    try:
        (episode, *_) = algo.env_runner.sample(num_timesteps=20, random_actions=False)
        module = algo.get_module()
        obs = torch.as_tensor(np.asarray(episode.get_observations()[:-1]))
        with torch.no_grad():
            inputs = module.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        dist = module.get_exploration_action_dist_cls().from_logits(inputs)
        k, params = (torch.as_tensor(np.asarray(part)) for part in episode.get_actions())
        logp = dist.logp((k, params))
        recorded = torch.as_tensor(np.asarray(episode.get_extra_model_outputs(
            Columns.ACTION_LOGP)), dtype=logp.dtype)
        torch.testing.assert_close(logp, recorded, atol=1e-5, rtol=1e-5)
        # "chosen": a brake step's likelihood is its discrete probability alone.
        brakes = k == 2
        if brakes.any():
            torch.testing.assert_close(logp[brakes], dist.logp_parts((k, params))[0][brakes])
    finally:
        algo.stop()


@pytest.mark.parametrize("key, value", [
    ("hybrid_sigma", "learned"), ("hybrid_logp_mode", "some"), ("hybrid_bound", "clip"),
    ("hybrid_initial_sigma", 0.0)])
def test_bad_module_options_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"model_config\\['{key}'\\]={value!r}"):
        hybrid_options({key: value})
