"""Driver-side look at an environment's spaces, so configs fail early with a clear message."""

from __future__ import annotations

import gymnasium as gym


def probe_env_spaces(config) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) the env runners will see, before any worker exists.

    Uses the spaces set with ``config.environment(observation_space=..., action_space=...)`` if
    given, otherwise builds one env instance with the same creator RLlib's env runners use.
    """
    if config.observation_space is not None and config.action_space is not None:
        return config.observation_space, config.action_space
    from ray.rllib.env.env_context import EnvContext

    from rllib_ext.core.rllib_compat import env_creator

    env = env_creator(config)(EnvContext(config.env_config, worker_index=0, num_workers=0))
    try:
        return (
            config.observation_space or env.observation_space,
            config.action_space or env.action_space,
        )
    finally:
        env.close()
