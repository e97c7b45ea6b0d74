"""Action bounds once per batch (rllib_ext/core/action_bounds.py): the env gets exactly what
RLlib's per-item piece would give it; Discrete actions skip the piece; multi-agent pipelines and
pipelines with user connectors keep RLlib's."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from ray.rllib.connectors.module_to_env import NormalizeAndClipActions
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_env import make_multi_agent

from rllib_ext import HPPOConfig, PGConfig
from rllib_ext.core.action_bounds import BatchedNormalizeAndClipActions
from rllib_ext.core.non_finite import GuardedEnvRunner, GuardedMultiAgentEnvRunner
from rllib_ext.core.spaces import has_box


def _pieces(config, runner_cls=GuardedEnvRunner):
    runner = runner_cls(config=config.env_runners(num_env_runners=0))
    try:
        return [type(c).__name__ for c in runner._module_to_env.connectors]
    finally:
        runner.stop()


def test_has_box():
    box = spaces.Box(-1, 1, (2,))
    assert has_box(box) and has_box(spaces.Tuple([spaces.Discrete(2), box]))
    assert has_box(spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Tuple([box])}))
    assert not has_box(spaces.Tuple([spaces.Discrete(2), spaces.MultiDiscrete([2, 3])]))


def test_pipelines():
    assert "NormalizeAndClipActions" not in _pieces(PGConfig().environment("CartPole-v1"))
    pendulum = _pieces(PGConfig().environment("Pendulum-v1"))
    # Bounded while still batched, before the per-episode split.
    assert "NormalizeAndClipActions" not in pendulum
    assert pendulum.index("BatchedNormalizeAndClipActions") < pendulum.index(
        "UnBatchToIndividualItems")
    assert "BatchedNormalizeAndClipActions" in _pieces(HPPOConfig().environment(
        "rllib_ext/Moving-v0").training(param_layout=[1, 1, 0]))
    # A user connector runs before the bounds, as in RLlib: RLlib's piece stays.
    user = _pieces(PGConfig().environment("Pendulum-v1").env_runners(
        module_to_env_connector=lambda env, spaces: []))
    assert "NormalizeAndClipActions" in user and "BatchedNormalizeAndClipActions" not in user
    multi = (PGConfig().environment(make_multi_agent("Pendulum-v1"), env_config={"num_agents": 2})
             .multi_agent(policies={"p0", "p1"},
                          policy_mapping_fn=lambda agent_id, episode, **kw: f"p{agent_id}"))
    assert "NormalizeAndClipActions" in _pieces(multi, GuardedMultiAgentEnvRunner)


def test_batched_bounds_equal_rllibs_per_item_bounds():
    space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-2.0, 6.0, (2,), np.float32),
                          spaces.Box(0.0, 1.0, (1,), np.float32)])
    rng = np.random.default_rng(0)
    actions = (rng.integers(0, 3, 16), rng.normal(0, 1.5, (16, 2)).astype(np.float32),
               rng.normal(0, 1.5, (16, 1)).astype(np.float32))
    for normalize, clip in ((True, False), (False, True)):
        batched = BatchedNormalizeAndClipActions(
            spaces.Box(-1, 1, (1,)), space, normalize_actions=normalize, clip_actions=clip)
        out = batched(rl_module=None, episodes=[], batch={Columns.ACTIONS: actions})
        per_item = NormalizeAndClipActions(
            spaces.Box(-1, 1, (1,)), space, normalize_actions=normalize, clip_actions=clip)
        for i in range(16):
            item = tuple(a[i] for a in actions)
            batch = {Columns.ACTIONS: {("eps",): [item]}}
            expected = per_item(rl_module=None, episodes=[], batch=batch)[
                Columns.ACTIONS_FOR_ENV][("eps",)][0]
            for got, want in zip((a[i] for a in out[Columns.ACTIONS_FOR_ENV]), expected,
                                 strict=True):
                np.testing.assert_array_equal(got, want)
        # The sample the losses see is left as it was.
        np.testing.assert_array_equal(out[Columns.ACTIONS][1], actions[1])
