"""Multi-agent ACE on RLlib's ``MultiAgentEnv``: per trained module its own replay, causal
FIFO, causal weights (each policy finds the action dimension that drives *its* reward),
dormancy and soft resets; shared policies, ``policies_to_train``, per-module metrics and a
checkpoint that restores every module's causal state and learner counters."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.utils.metrics import LEARNER_RESULTS

from rllib_ext.algorithms.ace.callbacks import ACE_RESULTS
from rllib_ext.envs.causal_reach import CausalReachEnv
from tests.helpers.tiny_configs import tiny_ace

#: Agent i's reward follows joint i alone.
INFLUENCE = {0: [1.0, 0.0], 1: [0.0, 1.0]}


class TwoReaches(MultiAgentEnv):
    """Two CausalReach arms side by side, one per agent, 20 steps: agent 0's reward is driven
    by its action dimension 0, agent 1's by its dimension 1."""

    def __init__(self, config=None):
        super().__init__()
        self.envs = {i: CausalReachEnv(influence=c, max_steps=20) for i, c in INFLUENCE.items()}
        self.agents = self.possible_agents = list(self.envs)
        self.observation_spaces = {i: e.observation_space for i, e in self.envs.items()}
        self.action_spaces = {i: e.action_space for i, e in self.envs.items()}

    def reset(self, *, seed=None, options=None):
        return {i: e.reset(seed=None if seed is None else seed + i)[0]
                for i, e in self.envs.items()}, {}

    def step(self, actions):
        obs, rewards, terminateds, truncateds = {}, {}, {}, {}
        for i, action in actions.items():
            obs[i], rewards[i], terminateds[i], truncateds[i], _ = self.envs[i].step(action)
        terminateds["__all__"] = all(terminateds.values())
        truncateds["__all__"] = all(truncateds.values())
        return obs, rewards, terminateds, truncateds, {}


class ReachAndDiscrete(TwoReaches):
    """Agent 1 has a Discrete action space, which ACE cannot take."""

    def __init__(self, config=None):
        super().__init__(config)
        self.action_spaces = {0: self.envs[0].action_space, 1: gym.spaces.Discrete(2)}


def _multi_agent(policies=("p0", "p1"), mapping=None, to_train=None, env=TwoReaches,
                 **training):
    mapping = mapping or (lambda agent_id, episode, **kw: f"p{agent_id}")
    return (tiny_ace(**training).environment(env)
            .multi_agent(policies=set(policies), policy_mapping_fn=mapping,
                         policies_to_train=to_train))


def _weights(algo, module_id) -> dict:
    return {k: v.clone() for k, v in algo.get_module(module_id).state_dict().items()}


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


def _learner(algo, fn):
    return next(iter(algo.learner_group.foreach_learner(fn))).get()


def test_each_policy_fits_its_own_causal_weights_and_resets_on_its_own(ray_session):
    # 100 uniformly random actions per agent, then a fit of each policy's last 100 steps.
    algo = _multi_agent(causal_async=False, causal_sample_size=100, causal_update_interval=100,
                        random_warmup_steps=200, reset_interval=4).build_algo()
    try:
        before = {m: _weights(algo, m) for m in ("p0", "p1")}
        for _ in range(5):  # 20 env steps (one episode, 2 agent steps) each
            result = algo.train()
        ace = result[ACE_RESULTS]
        assert set(ace) == {"p0", "p1"}
        assert set(algo.replay.replays) == set(algo.causal) == {"p0", "p1"}
        assert len(algo.replay["p0"]) == len(algo.replay["p1"]) == 100
        for module_id, driving in (("p0", 0), ("p1", 1)):
            state = algo.causal[module_id]
            assert ace[module_id]["causal_fits"] == state.num_fits == 1, module_id
            # The dimension that drives this policy's reward gets the larger weight.
            assert state.weights[driving] > state.weights[1 - driving], (module_id,
                                                                          state.weights)
            np.testing.assert_allclose(
                _learner(algo, lambda lrn, m=module_id: lrn.causal_weights(m).cpu().numpy()),
                state.weights, rtol=1e-6)
            # Each module counts its own updates and resets (at most one per iteration, once
            # 4 of its updates passed: every learning iteration here).
            stats = _learner(algo, lambda lrn, m=module_id: lrn.ace_stats(m))
            assert stats["num_resets"] == ace[module_id]["num_resets"] >= 1, stats
            assert stats["last_reset_update"] == stats["num_gradient_updates"] > 0, stats
            assert "dormancy_ratio" in result[LEARNER_RESULTS][module_id]
            assert _changed(before[module_id], _weights(algo, module_id)), module_id
        assert _changed(_weights(algo, "p0"), _weights(algo, "p1"))
    finally:
        algo.stop()


def test_a_shared_policy_takes_every_agents_steps(ray_session):
    algo = _multi_agent(policies=("shared",),
                        mapping=lambda agent_id, episode, **kw: "shared").build_algo()
    try:
        result = algo.train()
        env_steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert len(algo.replay["shared"]) == algo.causal["shared"].fifo.num_added \
            == 2 * env_steps  # two agents per env step
        # One module: the result's ace section is the module's own, as single-agent.
        assert result[ACE_RESULTS]["causal_fifo_size"] == 2 * env_steps
    finally:
        algo.stop()


def test_only_policies_to_train_learn(ray_session):
    algo = _multi_agent(to_train=["p0"]).build_algo()
    try:
        frozen = _weights(algo, "p1")
        for _ in range(3):
            algo.train()
        assert set(algo.replay.replays) == set(algo.causal) == {"p0"}
        assert not _changed(frozen, _weights(algo, "p1"))
    finally:
        algo.stop()


def test_checkpoint_restores_every_modules_causal_state_and_counters(ray_session, tmp_path):
    algo = _multi_agent(causal_async=False, causal_sample_size=40, causal_update_interval=40,
                        reset_interval=4, store_replay_in_checkpoint=True).build_algo()
    try:
        for _ in range(3):
            result = algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        weights = {m: _weights(algo, m) for m in ("p0", "p1")}
        causal = {m: algo.causal[m].weights.copy() for m in ("p0", "p1")}
        counters = _learner(algo, lambda lrn: lrn.module_ace_stats(["p0", "p1"]))
        sizes = {m: len(algo.replay[m]) for m in ("p0", "p1")}
    finally:
        algo.stop()
    assert all(result[ACE_RESULTS][m]["causal_fits"] >= 1 for m in ("p0", "p1"))
    restored = Algorithm.from_checkpoint(path)
    try:
        assert _learner(restored, lambda lrn: lrn.module_ace_stats(["p0", "p1"])) == counters
        for module_id in ("p0", "p1"):
            assert not _changed(weights[module_id], _weights(restored, module_id))
            np.testing.assert_array_equal(restored.causal[module_id].weights, causal[module_id])
            assert len(restored.replay[module_id]) == sizes[module_id]
            np.testing.assert_allclose(
                _learner(restored, lambda lrn, m=module_id: lrn.causal_weights(m).cpu().numpy()),
                causal[module_id], rtol=1e-6)
        restored.train()
    finally:
        restored.stop()


def test_two_learners_keep_every_module_identical_through_fits_and_resets(ray_session):
    """Two learners, two policies with their own fits and resets: each module's gradients
    are averaged over the learners and each reset draws the same fresh weights on both, so
    the learners end with identical weights, causal weights and counters per module."""
    algo = (_multi_agent(causal_async=False, causal_sample_size=40, causal_update_interval=40,
                         reset_interval=4)
            .learners(num_learners=2, num_cpus_per_learner=0.5)
            .build_algo())
    try:
        for _ in range(3):
            result = algo.train()
        states = [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: ({m: {k: v.detach().cpu().clone() for k, v in
                                  learner.module[m].unwrapped().state_dict().items()}
                              for m in ("p0", "p1")},
                             {m: learner.causal_weights(m).cpu().numpy() for m in ("p0", "p1")},
                             learner.module_ace_stats(["p0", "p1"])))]
    finally:
        algo.stop()
    assert all(result[ACE_RESULTS][m]["num_resets"] >= 1 and result[ACE_RESULTS][m][
        "causal_fits"] >= 1 for m in ("p0", "p1"))
    (weights_a, causal_a, stats_a), (weights_b, causal_b, stats_b) = states
    assert stats_a == stats_b
    for module_id in ("p0", "p1"):
        np.testing.assert_array_equal(causal_a[module_id], causal_b[module_id])
        for key, value in weights_a[module_id].items():
            torch.testing.assert_close(value, weights_b[module_id][key], rtol=0, atol=0,
                                       msg=f"{module_id}/{key}")
    assert _changed(weights_a["p0"], weights_a["p1"])


def test_a_policy_with_a_space_ace_cannot_take_is_refused():
    with pytest.raises(ValueError, match=r"ACE needs a 1-D Box action space.*Discrete\(2\)"):
        _multi_agent(env=ReachAndDiscrete).validate()
