"""Driver-side look at the spaces an algorithm's RL module will see, so configs fail early with
a clear message and algorithms size their replay before any worker exists.

RLlib builds every RL module against the *env-to-module pipeline's* output space (the env
runner's ``get_spaces()``: the user's connectors such as ``FlattenObservations``, frame
stacking or ``MeanStdFilter`` applied to the env's observation space), not the env's own.
:func:`module_spaces` computes that pair the same way on the driver.
"""

from __future__ import annotations

import gymnasium as gym

#: The fix named by every "needs a 1-D Box observation space" error: RLlib's own connector.
FLATTEN_OBSERVATIONS_FIX = (
    "add RLlib's connector that flattens Dict/Tuple/Discrete/multi-dim observations: "
    "config.env_runners(env_to_module_connector=lambda env, spaces, device: "
    "FlattenObservations()) (from ray.rllib.connectors.env_to_module import "
    "FlattenObservations)"
)


def probe_env_spaces(config) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) of one env as the env runners create it, before any
    worker exists.

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


def module_spaces(config) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) the RL module is built for: the env's spaces after the
    config's env-to-module connector pipeline, as ``SingleAgentEnvRunner.get_spaces()`` reports
    them (the action space is the env's: module-to-env connectors map *from* it).

    The user's ``env_to_module_connector`` callable is called with ``env=None`` and the env's
    spaces (RLlib documents every argument as optional).
    """
    from ray.rllib.env import INPUT_ENV_SINGLE_SPACES, INPUT_ENV_SPACES

    observation_space, action_space = probe_env_spaces(config)
    spaces = {INPUT_ENV_SPACES: (observation_space, action_space),
              INPUT_ENV_SINGLE_SPACES: (observation_space, action_space)}
    pipeline = config.build_env_to_module_connector(spaces=spaces)
    return pipeline.observation_space, action_space


def is_image_space(space: gym.Space) -> bool:
    """An ``(H, W, C)`` float Box: what RLlib's catalog encodes with a CNN."""
    import numpy as np

    return (isinstance(space, gym.spaces.Box) and len(space.shape) == 3
            and np.issubdtype(space.dtype, np.floating))


def policy_spaces(config) -> dict[str, tuple[gym.Space, gym.Space]]:
    """``{module_id: (observation_space, action_space)}`` the config's RL modules are built for:
    single-agent, the one module's :func:`module_spaces`; multi-agent, every policy's spaces as
    RLlib infers them from the env and ``config.multi_agent(policies=...)``
    (``AlgorithmConfig.get_multi_agent_setup``: a ``PolicySpec``'s own spaces, else those of
    the agents mapped to it)."""
    if not config.is_multi_agent:
        from ray.rllib.core.rl_module.rl_module import DEFAULT_MODULE_ID

        return {DEFAULT_MODULE_ID: module_spaces(config)}
    from ray.rllib.env.env_context import EnvContext

    from rllib_ext.core.rllib_compat import env_creator

    env = env_creator(config)(EnvContext(config.env_config, worker_index=0, num_workers=0))
    try:
        policies, _ = config.get_multi_agent_setup(env=env)
    finally:
        env.close()
    return {policy_id: (spec.observation_space, spec.action_space)
            for policy_id, spec in policies.items()}


def has_box(space: gym.Space) -> bool:
    """Whether ``space`` (any nesting of Tuple/Dict) holds a Box: the only spaces RLlib's
    ``normalize_actions`` / ``clip_actions`` change an action of."""
    if isinstance(space, gym.spaces.Box):
        return True
    if isinstance(space, gym.spaces.Tuple):
        return any(has_box(s) for s in space.spaces)
    if isinstance(space, gym.spaces.Dict):
        return any(has_box(s) for s in space.spaces.values())
    return False
