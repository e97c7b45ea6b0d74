"""Multi-agent P-DQN, MP-DQN, SP-DQN and PA-DDPG on RLlib's ``MultiAgentEnv``: a replay per
trained module, independent or shared policies, ``policies_to_train``, checkpoints with every
module, and the multi-agent non-finite guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.env.multi_agent_env import make_multi_agent
from ray.rllib.utils.metrics import LEARNER_RESULTS

from rllib_ext.core.non_finite import GuardedMultiAgentEnvRunner, NonFiniteEnvDataError
from tests.helpers.tiny_configs import tiny_paddpg, tiny_pdqn
from tests.helpers.toy_env import ToyHybridEnv

TwoToys = make_multi_agent(lambda config: ToyHybridEnv())
#: ToyHybridEnv: actions 0 and 2 own one parameter each.
LAYOUT = [1, 0, 1]


def _multi_agent(make, policies=("p0", "p1"), mapping=None, to_train=None, **training):
    mapping = mapping or (lambda agent_id, episode, **kw: f"p{agent_id}")
    return (
        make(env=(TwoToys, {"num_agents": 2}), param_layout=LAYOUT, **training)
        .multi_agent(policies=set(policies), policy_mapping_fn=mapping,
                     policies_to_train=to_train)
    )


def _weights(algo, module_id) -> dict:
    return {k: v.clone() for k, v in algo.get_module(module_id).state_dict().items()}


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("make, variant", [
    (tiny_pdqn, "mpdqn"), (tiny_pdqn, "pdqn"), (tiny_pdqn, "spdqn"), (tiny_paddpg, None)],
    ids=["mpdqn", "pdqn", "spdqn", "paddpg"])
def test_independent_policies_each_learn_from_their_own_replay(ray_session, make, variant):
    training = {"variant": variant} if variant else {}
    config = _multi_agent(make, **training)
    assert config.env_runner_cls is GuardedMultiAgentEnvRunner
    algo = config.build_algo()
    try:
        before = {m: _weights(algo, m) for m in ("p0", "p1")}
        for _ in range(3):
            result = algo.train()
        assert set(algo.replay.replays) == {"p0", "p1"}
        # Every env step is one step of each agent: the replays fill alike.
        assert len(algo.replay["p0"]) == len(algo.replay["p1"]) > 0
        assert {"p0", "p1"} <= set(result[LEARNER_RESULTS])
        for module_id in ("p0", "p1"):
            assert _changed(before[module_id], _weights(algo, module_id)), module_id
        # Independent modules: same init seed would give the same weights; they learnt apart.
        assert _changed(_weights(algo, "p0"), _weights(algo, "p1"))
    finally:
        algo.stop()


def test_a_shared_policy_stores_every_agents_steps(ray_session):
    config = _multi_agent(tiny_pdqn, policies=("shared",),
                          mapping=lambda agent_id, episode, **kw: "shared")
    algo = config.build_algo()
    try:
        result = algo.train()
        env_steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert len(algo.replay["shared"]) == 2 * env_steps  # two agents per env step
    finally:
        algo.stop()


def test_only_policies_to_train_learn(ray_session):
    algo = _multi_agent(tiny_pdqn, to_train=["p0"]).build_algo()
    try:
        frozen = _weights(algo, "p1")
        for _ in range(3):
            algo.train()
        assert set(algo.replay.replays) == {"p0"}
        assert not _changed(frozen, _weights(algo, "p1"))
    finally:
        algo.stop()


def test_checkpoint_restores_every_module_and_replay(ray_session, tmp_path):
    algo = _multi_agent(tiny_pdqn, store_replay_in_checkpoint=True).build_algo()
    try:
        for _ in range(2):
            algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        weights = {m: _weights(algo, m) for m in ("p0", "p1")}
        sizes = {m: len(algo.replay[m]) for m in ("p0", "p1")}
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        for module_id in ("p0", "p1"):
            assert not _changed(weights[module_id], _weights(restored, module_id))
            assert len(restored.replay[module_id]) == sizes[module_id]
        restored.train()
    finally:
        restored.stop()


def test_two_env_runners_and_two_learners_keep_every_module_identical(ray_session):
    """Multi-agent with 2 remote env runners and 2 learners: each module's gradients are
    averaged over the learners, so both learners end with identical weights per module."""
    algo = (_multi_agent(tiny_pdqn)
            .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
            .learners(num_learners=2, num_cpus_per_learner=0.5)
            .build_algo())
    try:
        for _ in range(2):
            result = algo.train()
        weights = [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: {m: learner.module[m].unwrapped().state_dict()
                             for m in ("p0", "p1")})]
    finally:
        algo.stop()
    assert {"p0", "p1"} <= set(result[LEARNER_RESULTS])
    first, second = weights
    for module_id in ("p0", "p1"):
        for key, value in first[module_id].items():
            torch.testing.assert_close(value, second[module_id][key], rtol=0, atol=0,
                                       msg=f"{module_id}/{key}")
    assert _changed(first["p0"], first["p1"])


class NaNAfterTwoSteps(ToyHybridEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, (np.nan if self.t >= 2 else reward), terminated, truncated, info


def test_non_finite_multi_agent_data_stops_the_run_naming_the_env(ray_session):
    config = tiny_pdqn(env=(make_multi_agent(lambda cfg: NaNAfterTwoSteps()),
                            {"num_agents": 2}), param_layout=LAYOUT).multi_agent(
        policies={"p0", "p1"}, policy_mapping_fn=lambda agent_id, episode, **kw: f"p{agent_id}")
    algo = config.build_algo()
    try:
        with pytest.raises(NonFiniteEnvDataError, match=r"reward.*=nan at a step"):
            algo.train()
    finally:
        algo.stop()
