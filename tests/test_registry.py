"""`import rllib_ext` registers everything, silently; register() is idempotent."""

from __future__ import annotations

import subprocess
import sys

from rllib_ext import registry


def test_import_prints_nothing_and_registers_pg():
    code = (
        "import rllib_ext\n"
        "from ray.tune.registry import TRAINABLE_CLASS, _global_registry\n"
        "assert _global_registry.contains(TRAINABLE_CLASS, 'PG')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_register_again_on_a_running_cluster(ray_session):
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    registry.register()
    registry.register()
    for name in registry.ALGORITHMS:
        assert _global_registry.contains(TRAINABLE_CLASS, name)
        assert _global_registry.get(TRAINABLE_CLASS, name) is registry.get_algorithm_class(name)


def test_algorithm_lookup_covers_rllib_builtins():
    from ray.rllib.algorithms.ppo import PPO

    assert registry.get_algorithm_class("PPO") is PPO
    names = registry.algorithm_names()
    assert names[: len(registry.ALGORITHMS)] == list(registry.ALGORITHMS) and "SAC" in names


def test_environments_are_registered_with_gymnasium_and_rllib(ray_session):
    import gymnasium as gym
    from ray.rllib.env.env_context import EnvContext

    from rllib_ext import PGConfig
    from rllib_ext.core.rllib_compat import env_creator

    assert all(env_id in gym.envs.registry for env_id in registry.ENVIRONMENTS)
    for env_id in ("rllib_ext/Platform-v0", "rllib_ext/Goal-v0"):
        creator = env_creator(PGConfig().environment(env_id))
        env = creator(EnvContext({"scale": True}, worker_index=0))
        assert env.observation_space.shape in ((9,), (17,))
        assert len(env.action_space.spaces) == 4  # flat: Discrete + 3 Boxes
