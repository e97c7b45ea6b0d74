"""CausalReach: a cheap continuous-control task whose action -> reward structure is known.

``A`` joints (default 6) live on ``[-1, 1]``; action dimension ``i`` moves joint ``i`` by
``step_size * a_i`` (clipped to the bounds). Each joint has a target ``g_i`` and an
*influence* ``c_i``; the reward is the influence-weighted progress towards the targets,

    r_t = sum_i c_i * (|x_i,t - g_i| - |x_i,t+1 - g_i|) / step_size  +  noise_t,

with ``noise_t ~ Uniform(-reward_noise, reward_noise)`` (non-Gaussian on purpose: LiNGAM
identifies a linear model through non-Gaussian noise). The default half-width 0.5 matters: with
little noise the reward is a near-copy of the dominant action and DirectLiNGAM often orients
that pair backwards (r -> a_0, effect 0); see benchmarks/RESULTS.md, "CausalReach-v0: causal
ranking", for how often at each noise level. Default influence
``c = (1.0, 0.5, 0.1, 0, 0, 0)``: two strong dimensions, one weak, three distractors that move
their own joint (so they change the observation) but never the reward.

Ground truth per dimension: the direct effect of ``a_i`` on ``r_t`` is
``c_i * sign(g_i - x_i,t)`` while the joint moves freely (``d r / d a_i``), i.e. ``+c_i`` as long
as joint ``i`` is below its target. Joints start uniformly in ``[-1, -0.5]`` and targets are at
``+0.5``, so under random or early exploration the effect is ``+c_i`` nearly always: a causal
discovery on ``[s, a, r]`` should rank the dimensions like ``c`` (:attr:`influence`), and the
distractors' weights should be the smallest. Once a good policy holds a joint at its target the
sign flips around it and the linear effect fades.

Episodes last ``max_steps`` (50) steps and end truncated; there is no terminal state. The best
return is ``sum_i c_i * |x_i,0 - g_i| / step_size`` (about 20 with the defaults: each strong joint
travels 1..1.5 at 0.1 per step). Observation: the joint positions ``x`` (float32, ``[-1, 1]^A``).

``render_mode="rgb_array"`` draws one column per joint (a bar from the middle to the joint's
position, the target as a line): with ``env_config={"pixels": [H, W]}`` the env becomes a pixel
task with the same causal structure.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rllib_ext.envs.actions import check_render_mode

DEFAULT_INFLUENCE = (1.0, 0.5, 0.1, 0.0, 0.0, 0.0)


class CausalReachEnv(gym.Env):
    """Joints to move to targets; only some action dimensions matter for the reward.

    Args:
        influence: Reward weight ``c_i`` of each joint (its length sets the action dimension);
            non-negative.
        step_size: Joint displacement per unit action per step (0.1).
        target: Target position of every joint, in ``(-1, 1)`` (0.5).
        reward_noise: Half-width of the uniform reward noise (0.5; 0 makes r a deterministic
            function of (s, a)).
        max_steps: Episode length (50).
        render_mode: None, or "rgb_array" (see :meth:`render`).
    """

    metadata = {"render_modes": ["rgb_array"]}
    #: Pixels per joint column and image height of :meth:`render`.
    COLUMN_WIDTH, HEIGHT = 16, 64

    def __init__(
        self,
        influence: Sequence[float] = DEFAULT_INFLUENCE,
        step_size: float = 0.1,
        target: float = 0.5,
        reward_noise: float = 0.5,
        max_steps: int = 50,
        render_mode: str | None = None,
    ):
        check_render_mode(type(self), render_mode)
        influence = np.asarray(influence, dtype=np.float64)
        if influence.ndim != 1 or len(influence) == 0 or (influence < 0).any():
            raise ValueError(f"influence must be a non-empty list of values >= 0, got {influence}.")
        if not (0 < step_size <= 1 and -1 < target < 1 and reward_noise >= 0 and max_steps > 0):
            raise ValueError(
                f"Need 0 < step_size <= 1, -1 < target < 1, reward_noise >= 0, max_steps > 0; "
                f"got {step_size}, {target}, {reward_noise}, {max_steps}."
            )
        self.influence = influence
        self.step_size = float(step_size)
        self.target = float(target)
        self.reward_noise = float(reward_noise)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        dim = len(influence)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self._x = np.zeros(dim)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = self.np_random.uniform(-1.0, -0.5, size=len(self.influence))
        self._t = 0
        return self._x.astype(np.float32), {}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if a.shape != self._x.shape:
            raise ValueError(f"action needs shape {self._x.shape}, got {a.shape}.")
        before = np.abs(self._x - self.target)
        self._x = np.clip(self._x + self.step_size * a, -1.0, 1.0)
        progress = (before - np.abs(self._x - self.target)) / self.step_size
        reward = float(self.influence @ progress)
        if self.reward_noise > 0:
            reward += float(self.np_random.uniform(-self.reward_noise, self.reward_noise))
        self._t += 1
        info = {"progress": progress}
        return self._x.astype(np.float32), reward, False, self._t >= self.max_steps, info

    def render(self):
        """HEIGHT x (COLUMN_WIDTH * A) x 3 uint8: per joint, a blue bar from the middle (0) to
        its position (up is +1), the target as a red line, on white."""
        if self.render_mode != "rgb_array":
            gym.logger.warn("render() needs CausalReachEnv(render_mode='rgb_array').")
            return None
        height, width = self.HEIGHT, self.COLUMN_WIDTH
        frame = np.full((height, width * len(self._x), 3), 255, np.uint8)

        def row(position: float) -> int:  # +1 -> top row, -1 -> bottom row
            return int(round((1.0 - position) / 2.0 * (height - 1)))

        middle, target = row(0.0), row(self.target)
        for i, x in enumerate(self._x):
            left, right = i * width + 2, (i + 1) * width - 2
            top, bottom = sorted((middle, row(float(x))))
            frame[top:bottom + 1, left:right] = (40, 90, 200)
            frame[target, i * width:(i + 1) * width] = (200, 40, 40)
        return frame
