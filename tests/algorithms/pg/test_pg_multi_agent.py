"""PG on RLlib's MultiAgentEnv: a module per policy, baselines and advantages per module."""

from __future__ import annotations

import pytest
import torch
from ray.rllib.env.multi_agent_env import make_multi_agent

from rllib_ext import PGConfig

TwoCartPoles = make_multi_agent("CartPole-v1")


def _config(baseline, policies=("p0", "p1"), mapping=None):
    mapping = mapping or (lambda agent_id, episode, **kw: f"p{agent_id}")
    return (
        PGConfig()
        .environment(TwoCartPoles, env_config={"num_agents": 2})
        .multi_agent(policies=set(policies), policy_mapping_fn=mapping)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=200, baseline=baseline)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .debugging(seed=0)
    )


@pytest.mark.parametrize("baseline", ["mean", "value"])
def test_each_policy_learns_on_its_agents_episodes(ray_session, baseline):
    algo = _config(baseline).build_algo()
    try:
        before = {m: {k: v.clone() for k, v in algo.get_module(m).state_dict().items()}
                  for m in ("p0", "p1")}
        result = algo.train()
        assert {"p0", "p1"} <= set(result["learners"])
        for module_id in ("p0", "p1"):
            after = algo.get_module(module_id).state_dict()
            assert any(not torch.equal(before[module_id][k], after[k]) for k in after)
    finally:
        algo.stop()


def test_a_shared_policy_gets_every_agents_episodes(ray_session):
    """Baselines and advantages are computed per module, over all episodes of the agents that
    map to it: a shared policy gets both agents' episodes."""
    from rllib_ext.algorithms.pg.pg import per_module
    from rllib_ext.core.env_runner_faults import sample_env_runners

    algo = _config("mean", policies=("shared",),
                   mapping=lambda agent_id, episode, **kw: "shared").build_algo()
    try:
        episodes, _ = sample_env_runners(algo, max_env_steps=200)
        groups = per_module(episodes, [0] * len(episodes))
        assert set(groups) == {"shared"}
        assert len(groups["shared"][0]) == 2 * len(episodes)  # two agents per episode
    finally:
        algo.stop()
