"""Image observations for any env that renders: ``env_config={"pixels": [H, W]}``.

:class:`PixelObservations` replaces the observation by the env's own ``rgb_array`` frame,
shrunk to H x W grey levels in [0, 1] (area averaging, so a sprite a few pixels wide in the
full frame still shows) and stacked with the previous frame(s), so that motion is visible.
The observation is a float32 ``Box(0, 1, (H, W, frames))``: RLlib's catalog builds a CNN for it
(``model_config["conv_filters"]``).
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
from PIL import Image


class PixelObservations(gym.ObservationWrapper):
    """The env's rendered frame as a small grey image stack (see the module docstring).

    Args:
        env: An env created with ``render_mode="rgb_array"``.
        size: (height, width) of the image.
        frames: How many of the latest frames are stacked along the last axis (2 shows
            velocities; the first observation of an episode repeats its frame).
    """

    def __init__(self, env: gym.Env, size: tuple[int, int], frames: int = 2):
        super().__init__(env)
        height, width = (int(v) for v in size)
        if height < 8 or width < 8 or int(frames) < 1:
            raise ValueError(f"pixels needs [height, width] of at least 8 each and frames >= 1, "
                             f"got size={list(size)}, frames={frames}.")
        if env.render_mode != "rgb_array":
            raise ValueError(f"PixelObservations draws the env's frames: create the env with "
                             f"render_mode='rgb_array', got {env.render_mode!r}.")
        self.size, self.frames = (height, width), int(frames)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (height, width, self.frames),
                                                np.float32)
        self._stack: deque[np.ndarray] = deque(maxlen=self.frames)

    def frame(self) -> np.ndarray:
        """The current frame, H x W grey levels in [0, 1]."""
        rgb = self.env.render()
        grey = Image.fromarray(rgb).convert("L").resize(self.size[::-1], Image.BOX)
        return np.asarray(grey, np.float32) / 255.0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._stack.clear()
        return self.observation(obs), info

    def observation(self, observation) -> np.ndarray:
        frame = self.frame()
        while len(self._stack) < self.frames - 1:
            self._stack.append(frame)
        self._stack.append(frame)
        return np.stack(self._stack, axis=-1)
