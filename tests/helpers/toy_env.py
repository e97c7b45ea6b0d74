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
