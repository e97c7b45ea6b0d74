"""Agent-side views of the parameterised-action domains, as in the MP-DQN run scripts.

- :class:`GoalFeatures`: Goal's 14 raw features + 3 (unit ball-minus-keeper vector, keeper
  projection on the goal line) = 17, with the run scripts' declared bounds.
- :class:`ScaledFlatObservation`: ``Tuple(Box, Discrete)`` -> one ``Box`` in [-1, 1], scaled
  from the declared bounds (``2 (s - low) / (high - low) - 1``, unclipped like the original).
  The frame count is dropped from the observation (the agents of the reference ignore it); the
  envs report it in ``info["frames"]``.
- :class:`ScaledParameterisedActions`: every action's parameters presented in [-1, 1] and mapped
  back to original units (``low + (high - low) (p + 1) / 2``), as flat
  ``Tuple(Discrete(K), Box_1, ..., Box_K)`` (default, the MP-DQN form) or nested
  ``Tuple(Discrete(K), Tuple(Box_1, ..., Box_K))``.

From RLlib: ``config.environment("rllib_ext/Platform-v0", env_config={"scale": True})``;
from gymnasium: ``rllib_ext.envs.make("rllib_ext/Goal-v0", scale=True)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rllib_ext.envs.goal import GOAL_WIDTH, PITCH_LENGTH

#: Wrapper options of ``make`` (valid in an RLlib ``env_config`` next to the env's own kwargs).
ENV_CONFIG_KEYS = ("scale", "flat_actions", "render_mode", "pixels")


class GoalFeatures(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Appends [ (ball - keeper) / |ball - keeper| (2 values), keeper projection ] to Goal."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        box, frames = env.observation_space.spaces
        low = np.concatenate([box.low, [-1.0, -1.0, -GOAL_WIDTH / 2]]).astype(np.float32)
        # The upper bound GOAL_WIDTH (not GOAL_WIDTH / 2) is the original's, kept on purpose.
        high = np.concatenate([box.high, [1.0, 1.0, GOAL_WIDTH]]).astype(np.float32)
        self.observation_space = spaces.Tuple((spaces.Box(low, high, dtype=np.float32), frames))

    @staticmethod
    def features(state: np.ndarray) -> np.ndarray:
        """The 3 extra features from a 14-d raw state (player 0-4, keeper 5-9, ball 10-13)."""
        kx, ky, bx, by = (float(v) for v in (state[5], state[6], state[10], state[11]))
        dist = float(np.hypot(bx - kx, by - ky))
        # Ball and keeper never overlap (collisions push them apart); guard anyway.
        ux, uy = ((bx - kx) / dist, (by - ky) / dist) if dist > 0 else (0.0, 0.0)
        if kx == bx:  # vertical keeper-ball line: the original's convention
            projection = -GOAL_WIDTH / 2 if ky < by else GOAL_WIDTH / 2
        else:
            grad = (ky - by) / (kx - bx)
            y_int = by - grad * bx
            projection = float(np.clip(grad * PITCH_LENGTH / 2 + y_int, -GOAL_WIDTH / 2,
                                       GOAL_WIDTH))
        return np.array((ux, uy, projection), dtype=np.float32)

    def observation(self, observation):
        state, frames = observation
        return np.concatenate([state, self.features(state)]).astype(np.float32), frames


class ScaledFlatObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """``(state, frames)`` -> ``state`` scaled to [-1, 1] by the declared Box bounds."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, spaces.Tuple) and isinstance(space.spaces[0], spaces.Box)):
            raise ValueError(f"ScaledFlatObservation needs Tuple(Box, Discrete), got {space}.")
        box = space.spaces[0]
        self._low = box.low.astype(np.float64)
        self._range = (box.high - box.low).astype(np.float64)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=box.shape, dtype=np.float32)

    def observation(self, observation):
        state, _frames = observation
        return (2.0 * (np.asarray(state, np.float64) - self._low) / self._range - 1.0).astype(
            np.float32
        )


class ScaledParameterisedActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Agent parameters in [-1, 1] -> the env's ``(k, (p_1, ..., p_K))`` in original units."""

    def __init__(self, env: gym.Env, *, flat: bool = True):
        gym.utils.RecordConstructorArgs.__init__(self, flat=flat)
        super().__init__(env)
        space = env.action_space
        discrete, params = space.spaces
        self._low = [b.low.astype(np.float64) for b in params.spaces]
        self._range = [(b.high - b.low).astype(np.float64) for b in params.spaces]
        boxes = tuple(spaces.Box(-1.0, 1.0, shape=b.shape, dtype=np.float32)
                      for b in params.spaces)
        self.flat = flat
        self.action_space = spaces.Tuple(
            (discrete, *boxes) if flat else (discrete, spaces.Tuple(boxes))
        )

    def action(self, action):
        num = len(self._low)
        if not isinstance(action, (Sequence, np.ndarray)) or isinstance(action, str):
            raise ValueError(f"Expected an action in {self.action_space}, got {action!r}.")
        if self.flat:
            if len(action) != num + 1:
                raise ValueError(
                    f"Expected (k, p_1, ..., p_{num}) in {self.action_space}, got {action!r}."
                )
            k, params = action[0], action[1:]
        else:
            if len(action) != 2 or not isinstance(action[1], (Sequence, np.ndarray)) or len(
                action[1]
            ) != num:
                raise ValueError(
                    f"Expected (k, (p_1, ..., p_{num})) in {self.action_space}, got {action!r}."
                )
            k, params = action
        try:
            mapped = tuple(
                low + rng * (np.asarray(p, dtype=np.float64).reshape(low.shape) + 1.0) / 2.0
                for p, low, rng in zip(params, self._low, self._range, strict=True)
            )
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Bad action parameters {params!r} for {self.action_space}: {e}"
            ) from None
        return k, mapped

    def to_agent(self, params: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Inverse map: original-unit parameters -> the agent's [-1, 1] values."""
        return [
            (2.0 * (np.asarray(p, np.float64) - low) / rng - 1.0).astype(np.float32)
            for p, low, rng in zip(params, self._low, self._range, strict=True)
        ]


def wrap_for_agents(env: gym.Env, *, flat_actions: bool = True) -> gym.Env:
    """The MP-DQN run scripts' wrapper stack for Platform or Goal (scaled obs and actions)."""
    from rllib_ext.envs.goal import GoalEnv
    from rllib_ext.envs.platform import PlatformEnv

    base = env.unwrapped
    if isinstance(base, GoalEnv):
        env = GoalFeatures(env)
    elif not isinstance(base, PlatformEnv):
        raise ValueError(f"wrap_for_agents knows PlatformEnv and GoalEnv, got {type(base)}.")
    return ScaledParameterisedActions(ScaledFlatObservation(env), flat=flat_actions)


def make(env_id: str, *, scale: bool = False, flat_actions: bool = True,
         render_mode: str | None = None, pixels: list[int] | None = None,
         **env_kwargs) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` plus, with ``scale=True``, the agent-side wrappers.

    ``flat_actions`` only applies with ``scale=True``: the flat
    ``Tuple(Discrete, Box_1, ..., Box_K)`` form (default) or the nested one. ``pixels``
    ([height, width]): observations are the env's rendered frames instead
    (:class:`~rllib_ext.envs.pixels.PixelObservations`, the last 2 frames stacked).
    ``env_kwargs`` go to the env's constructor (e.g. CausalReach's ``influence``).
    """
    if not isinstance(scale, bool) or not isinstance(flat_actions, bool):
        raise ValueError(
            f"scale and flat_actions must be true/false, got scale={scale!r}, "
            f"flat_actions={flat_actions!r}."
        )
    if pixels is not None:
        if not (isinstance(pixels, (list, tuple)) and len(pixels) == 2):
            raise ValueError(f"pixels must be [height, width], e.g. [28, 96]; got {pixels!r}.")
        render_mode = "rgb_array"
    env = gym.make(env_id, render_mode=render_mode, **env_kwargs)
    if scale:
        env = wrap_for_agents(env, flat_actions=flat_actions)
    if pixels is not None:
        from rllib_ext.envs.pixels import PixelObservations

        env = PixelObservations(env, tuple(pixels))
    return env


def constructor_keys(env_id: str) -> list[str]:
    """Keyword arguments the registered env's constructor accepts (besides ``render_mode``)."""
    import inspect

    entry_point = gym.spec(env_id).entry_point
    if isinstance(entry_point, str):
        module, _, name = entry_point.partition(":")
        entry_point = getattr(importlib.import_module(module), name)
    return [name for name, p in inspect.signature(entry_point).parameters.items()
            if name != "render_mode" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_from_env_config(env_id: str, env_config) -> gym.Env:
    """RLlib env creator body: checks the ``env_config`` keys, then calls :func:`make`.

    Valid keys are the wrapper options (``scale``, ``flat_actions``, ``render_mode``,
    ``pixels``) and the
    env constructor's own keyword arguments.
    """
    config = dict(env_config or {})
    valid = [*ENV_CONFIG_KEYS, *constructor_keys(env_id)]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown env_config key(s) {unknown} for {env_id}; valid keys: "
            f"{valid} (e.g. env_config={{'scale': True}})."
        )
    return make(env_id, **config)
