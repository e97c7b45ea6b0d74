"""The one place that names what rllib_ext registers: Tune trainables and environments.

``register()`` is idempotent. Call it again after ``ray.init()`` on a fresh cluster: Tune's and
RLlib's registries live in the cluster's GCS and start empty there.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Tune name -> "module:Algorithm class".
ALGORITHMS: dict[str, str] = {
    "ACE": "rllib_ext.algorithms.ace.ace:ACE",
    "PG": "rllib_ext.algorithms.pg.pg:PG",
    "PDQN": "rllib_ext.algorithms.pdqn.pdqn:PDQN",
    "PADDPG": "rllib_ext.algorithms.paddpg.paddpg:PADDPG",
    "HPPO": "rllib_ext.algorithms.hppo.hppo:HPPO",
}

#: Environment id -> (entry point "module:Class", gymnasium.register kwargs). Each id is
#: registered with gymnasium (``gym.make(id)``) and with RLlib/Tune (``config.environment(id)``).
#: RLlib's ``env_config`` may carry ``scale``, ``flat_actions``, ``render_mode`` and ``pixels``
#: (see ``rllib_ext.envs.wrappers.make``).
ENVIRONMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    # One step = one macro-action; the original registration's 200-step limit.
    "rllib_ext/Platform-v0": ("rllib_ext.envs.platform:PlatformEnv", {"max_episode_steps": 200}),
    # No TimeLimit: the env ends episodes itself after 100 macro-steps, like the original.
    "rllib_ext/Goal-v0": ("rllib_ext.envs.goal:GoalEnv", {}),
    # gym-hybrid's domains; no TimeLimit: the env ends episodes itself after 201 steps.
    "rllib_ext/Moving-v0": ("rllib_ext.envs.hybrid:MovingEnv", {}),
    "rllib_ext/Sliding-v0": ("rllib_ext.envs.hybrid:SlidingEnv", {}),
    # Joints to targets; documented per-action-dimension reward influence (ACE diagnostics).
    "rllib_ext/CausalReach-v0": ("rllib_ext.envs.causal_reach:CausalReachEnv", {}),
    # CartPole-v1 without the velocities (partial observability; recurrent policies).
    "rllib_ext/CartPoleNoVelocity-v0": (
        "rllib_ext.envs.partial_observability:CartPoleNoVelocityEnv",
        {"max_episode_steps": 500, "reward_threshold": 475.0}),
}


#: Multi-agent environment id -> "module:Class" (an RLlib ``MultiAgentEnv`` taking the env
#: config), registered with RLlib/Tune only (gymnasium's registry is for single-agent envs).
MULTI_AGENT_ENVIRONMENTS: dict[str, str] = {
    # Two players race across the Platform level (rllib_ext.envs.platform_race).
    "rllib_ext/PlatformRace-v0": "rllib_ext.envs.platform_race:PlatformRaceEnv",
}


def load(path: str):
    """Imports ``"package.module:attr"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_algorithm_class(name: str):
    """An rllib_ext algorithm by Tune name, else one of RLlib's built-ins; KeyError if neither."""
    if name in ALGORITHMS:
        return load(ALGORITHMS[name])
    from ray.rllib.algorithms.registry import ALGORITHMS as RLLIB_ALGORITHMS

    if name in RLLIB_ALGORITHMS:
        return RLLIB_ALGORITHMS[name]()[0]
    raise KeyError(name)


def algorithm_names() -> list[str]:
    """Every algorithm name the CLI accepts: rllib_ext's first, then RLlib's built-ins."""
    from ray.rllib.algorithms.registry import ALGORITHMS as RLLIB_ALGORITHMS

    return list(ALGORITHMS) + sorted(set(RLLIB_ALGORITHMS) - set(ALGORITHMS))


def _env_creator(env_id: str):
    def create(env_config):
        from rllib_ext.envs.wrappers import make_from_env_config

        return make_from_env_config(env_id, env_config)

    return create


def register() -> None:
    """Registers every algorithm with Tune and every environment with gymnasium and RLlib."""
    import gymnasium as gym
    from ray.tune.registry import register_env, register_trainable

    for name, path in ALGORITHMS.items():
        register_trainable(name, load(path))
    for env_id, (entry_point, kwargs) in ENVIRONMENTS.items():
        if env_id not in gym.envs.registry:
            gym.register(id=env_id, entry_point=entry_point, **kwargs)
        register_env(env_id, _env_creator(env_id))
    for env_id, path in MULTI_AGENT_ENVIRONMENTS.items():
        register_env(env_id, load(path))
