"""Partially observed variants of classic control tasks, for recurrent policies.

``rllib_ext/CartPoleNoVelocity-v0``: CartPole-v1 (same dynamics, rewards, 500-step limit) whose
observation keeps the cart position and the pole angle and drops both velocities. A
feed-forward policy sees a snapshot that does not determine the state (the same position and
angle occur with the pole falling left or right); a recurrent policy can infer the velocities
from consecutive observations.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

#: Indices of CartPole's observation the masked variant keeps: cart position, pole angle.
CARTPOLE_POSITION_INDICES = (0, 2)


class CartPoleNoVelocityEnv(CartPoleEnv):
    """CartPole with observations ``[cart position, pole angle]`` only."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        keep = list(CARTPOLE_POSITION_INDICES)
        self.observation_space = gym.spaces.Box(self.observation_space.low[keep],
                                                self.observation_space.high[keep],
                                                dtype=np.float32)

    def _mask(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation, np.float32)[list(CARTPOLE_POSITION_INDICES)]

    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed, options=options)
        return self._mask(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        return self._mask(observation), reward, terminated, truncated, info
