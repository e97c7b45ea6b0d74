"""A tiny parameterised-action env for the algorithm tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ToyHybridEnv(gym.Env):
    """Tuple(Discrete(3), Box(2)) with actions 0 and 2 owning one parameter each."""

    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)))

    def __init__(self, config=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        k, params = action
        self.t += 1
        reward = float(k == 0) * (1 - abs(float(params[0]) - 0.5))
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return obs, reward, self.t >= 5, False, {}


class DictObservations(gym.Wrapper):
    """The wrapped env's Box observation as ``Dict(features=Box, phase=Discrete(2))``, where
    ``phase`` is the step count's parity: an observation space none of our networks take
    directly, for RLlib's ``FlattenObservations`` connector to flatten (to Box(n + 2))."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = spaces.Dict(
            {"features": env.observation_space, "phase": spaces.Discrete(2)})
        self.t = 0

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.t = 0
        return {"features": obs, "phase": 0}, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return {"features": obs, "phase": self.t % 2}, reward, terminated, truncated, info
