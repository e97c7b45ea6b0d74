"""Platform (Masson, Ranchod & Konidaris, AAAI 2016) as a gymnasium 1.x environment.

A faithful port of the dynamics of cycraig/gym-platform (itself a port of
WarwickMasson/aaai-platformer), the domain on which P-DQN, MP-DQN and PA-DDPG report results.
The agent must cross three platforms separated by two gaps while avoiding the enemy patrolling
each of the first two platforms.

Actions ``(k, (p_run, p_hop, p_leap))``: ``k`` = 0 run, 1 hop, 2 leap; each with one parameter,
the horizontal distance, in ``[0, 30]``, ``[0, 720]`` and ``[0, 430]``. Only the chosen action's
parameter is used, clipped to its bounds. One ``step`` is one *macro-action*: run lasts 20
frames of ``DT = 0.05``; hop and leap last until the player lands again. The episode ends when
the player falls into a gap, touches an enemy or reaches the right end (x >= 1035).

Reward: x-progress over the macro-step / 1035, so an episode's return is at most 1 (1 = the
goal was reached). Observation: ``(state, frames)`` with ``state`` the 9 scaled features
``[player x, player dx, enemy x, enemy dx, platform width, next platform width, gap, platform
start, height difference]`` and ``frames`` the number of frames the last macro-step took.

Differences from the original, none of which changes the dynamics:
- randomness comes from gymnasium's ``np_random`` (a ``numpy.random.Generator``; the original
  used a ``RandomState``), so the same seed gives a different - but reproducible - noise stream;
- the per-frame update uses Python floats instead of numpy 2-vectors (same arithmetic, same
  operation order), which makes it several times faster;
- ``frames`` in the observation is capped at 199 to stay inside ``Discrete(200)``
  (``info["frames"]`` has the exact count);
- rendering is drawn with Pillow (no pygame) and records intermediate frames only when a
  ``render_mode`` is set.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rllib_ext.envs.actions import (
    check_render_mode,
    parameterised_action_space,
    parse_parameterised_action,
)

# -- constants (names and values of the original) ---------------------------------------------
PLATFORM_HEIGHT = 40.0
WIDTH1, WIDTH2, WIDTH3 = 250.0, 275.0, 50.0
GAP1, GAP2 = 225.0, 235.0
HEIGHT1 = HEIGHT2 = HEIGHT3 = 0.0
MAX_HEIGHT = max(1.0, HEIGHT1, HEIGHT2, HEIGHT3)
MAX_PLATFORM_WIDTH = max(WIDTH1, WIDTH2, WIDTH3)
TOTAL_WIDTH = WIDTH1 + WIDTH2 + WIDTH3 + GAP1 + GAP2  # 1035
MAX_GAP = max(GAP1, GAP2)

ENEMY_SPEED = 30.0
ENEMY_NOISE = 0.5
ENEMY_W, ENEMY_H = 20.0, 30.0
PLAYER_NOISE = ENEMY_NOISE
PLAYER_W, PLAYER_H = ENEMY_W, ENEMY_H
#: Sprite sizes for the renderer (rendering imports nothing from this module).
_SPRITES = {"player_size": (PLAYER_W, PLAYER_H), "enemy_size": (ENEMY_W, ENEMY_H)}

DT = 0.05
MAX_DX = 100.0
MAX_DY = 200.0
MAX_DX_ON = 70.0
MAX_DDX = (MAX_DX - MAX_DX_ON) / DT  # 600
MAX_DDY = MAX_DY / DT  # 4000
LEAP_DEV = 1.0
HOP_DEV = 1.0
VELOCITY_DECAY = 0.99
GRAVITY = 9.8

SHIFT_VECTOR = np.array([PLAYER_W, 0.0, 0.0, ENEMY_SPEED, 0.0, 0.0, 0.0, 0.0, 0.0])
SCALE_VECTOR = np.array([
    TOTAL_WIDTH + PLAYER_W, MAX_DX, TOTAL_WIDTH, 2 * ENEMY_SPEED,
    MAX_PLATFORM_WIDTH, MAX_PLATFORM_WIDTH, MAX_GAP, TOTAL_WIDTH, MAX_HEIGHT,
])

RUN, HOP, LEAP = 0, 1, 2
ACTION_NAMES = ("run", "hop", "leap")
PARAMETERS_MIN = (0.0, 0.0, 0.0)
PARAMETERS_MAX = (30.0, 720.0, 430.0)  # "set from empirical testing" in the original
MAX_FRAMES_OBS = 199


def _clip(value: float, low: float, high: float) -> float:
    """``np.clip`` for one float (same result, no array round trip)."""
    return min(max(value, low), high)


class _Platform:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x: float, y: float, width: float):
        self.x, self.y, self.w, self.h = x, y, width, PLATFORM_HEIGHT


class _Enemy:
    """Patrols its platform at up to ENEMY_SPEED, with Gaussian speed noise."""

    __slots__ = ("platform", "x", "y", "dx")

    def __init__(self, platform: _Platform):
        self.platform = platform
        self.reset()

    def reset(self) -> None:
        self.dx = -ENEMY_SPEED
        # position = platform.position + platform.size - (enemy width, 0)
        self.x = self.platform.w + self.platform.x - ENEMY_W
        self.y = self.platform.h + self.platform.y

    def update(self, dt: float, rng: np.random.Generator) -> None:
        p = self.platform
        right = p.x + p.w - ENEMY_W
        if not p.x < self.x < right:
            self.dx *= -1
        self.dx += ENEMY_NOISE * dt * rng.standard_normal()  # == rng.normal(0, NOISE * dt)
        self.dx = _clip(self.dx, -ENEMY_SPEED, ENEMY_SPEED)
        self.x += self.dx * dt
        self.x = _clip(self.x, p.x, right)


class _Player:
    __slots__ = ("x", "y", "vx", "vy")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.x, self.y = 0.0, PLATFORM_HEIGHT
        self.vx, self.vy = 0.0, 0.0

    def update(self, dt: float) -> None:
        self.x += self.vx * dt
        self.y += self.vy * dt
        self.x = _clip(self.x, 0.0, TOTAL_WIDTH)
        self.vx *= VELOCITY_DECAY

    def accelerate(self, ax: float, ay: float, rng: np.random.Generator, dt: float = DT) -> None:
        ax = _clip(ax, -MAX_DDX, MAX_DDX)
        ay = _clip(ay, -MAX_DDY, MAX_DDY)
        self.vx += ax * dt
        self.vy += ay * dt
        self.vx -= abs(PLAYER_NOISE * dt * rng.standard_normal())  # |N(0, NOISE * dt)|
        self.vx = _clip(self.vx, -MAX_DX, MAX_DX)
        self.vy = _clip(self.vy, -MAX_DY, MAX_DY)
        self.vx = max(self.vx, 0.0)

    def ground_bound(self) -> None:
        self.vx = _clip(self.vx, 0.0, MAX_DX_ON)

    def run(self, power: float, dt: float, rng) -> None:
        if dt > 0:
            self.accelerate(power / dt, 0.0, rng, dt)

    def jump_to(self, diffx: float, dy0: float, dev: float, rng) -> None:
        time = 2.0 * dy0 / GRAVITY + 1.0
        dx0 = diffx / time - self.vx
        dx0 = _clip(dx0, -MAX_DDX, MAX_DY - dy0)
        noise = -np.abs(rng.normal(0.0, dev, 2)) if dev > 0 else (0.0, 0.0)
        self.accelerate((dx0 + noise[0]) / DT, (dy0 + noise[1]) / DT, rng)

    def fall(self, rng) -> None:
        self.accelerate(0.0, -GRAVITY, rng)

    def decollide(self, other: _Platform) -> None:
        """Moves out of ``other`` along the axis of smaller displacement (original rule)."""
        pre_x, pre_y = other.x - PLAYER_W, other.y - PLAYER_H
        post_x, post_y = other.x + other.w, other.y + other.h
        newx, newy = self.x, self.y
        if self.x < other.x:
            newx = pre_x
        elif self.x > post_x - PLAYER_W:
            newx = post_x
        if self.y < other.y:
            newy = pre_y
        elif self.y > post_y - PLAYER_H:
            newy = post_y
        if newx == self.x:
            self.vy = 0.0
            self.y = newy
        elif newy == self.y:
            self.vx = 0.0
            self.x = newx
        elif abs(self.x - newx) < abs(self.y - newy):
            self.vx = 0.0
            self.x = newx
        else:
            self.vy = 0.0
            self.y = newy

    def colliding(self, ox: float, oy: float, ow: float, oh: float) -> bool:
        """Strict axis-aligned overlap with a box at (ox, oy) of size (ow, oh)."""
        return (
            ox - PLAYER_W < self.x
            and oy - PLAYER_H < self.y
            and self.x < ox + ow
            and self.y < oy + oh
        )


class PlatformEnv(gym.Env):
    """The Platform domain; see the module docstring for dynamics, spaces and deviations."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None):
        check_render_mode(type(self), render_mode)
        self.render_mode = render_mode
        self.action_space = parameterised_action_space(PARAMETERS_MIN, PARAMETERS_MAX)
        self.observation_space = spaces.Tuple((
            spaces.Box(0.0, 1.0, shape=(9,), dtype=np.float32),
            spaces.Discrete(200),
        ))
        self.platforms = (
            _Platform(0.0, HEIGHT1, WIDTH1),
            _Platform(GAP1 + WIDTH1, HEIGHT2, WIDTH2),
            _Platform(GAP1 + WIDTH1 + GAP2 + WIDTH2, HEIGHT3, WIDTH3),
        )
        self.right_bound = self.platforms[2].x + self.platforms[2].w  # 1035
        self.lower_bound = min(p.y for p in self.platforms)
        self.player = _Player()
        self.enemies = (_Enemy(self.platforms[0]), _Enemy(self.platforms[1]))
        self.xpos = 0.0
        # (player x, y, enemy1 x, enemy2 x) per simulated frame of the last macro-step; only
        # recorded when rendering.
        self.frame_log: list[tuple[float, float, float, float]] = []

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.xpos = 0.0
        self.player.reset()
        for enemy in self.enemies:
            enemy.reset()
        self.frame_log = []
        return (self._state(), 0), {}

    def step(self, action):
        k, params = parse_parameterised_action(action, self.action_space)
        param = _clip(float(params[k][0]), PARAMETERS_MIN[k], PARAMETERS_MAX[k])
        self.frame_log = []
        self.xpos = self.player.x
        frames, difft, running = 0, 1.0, True
        reward, terminal = 0.0, False
        while running:
            reward, terminal = self._update(k, param)
            if k == RUN:
                difft -= DT
                running = difft > 0
            else:  # hop, leap: until back on a platform
                running = not self._on_platforms()
            if terminal:
                running = False
            frames += 1
        obs = (self._state(), min(frames, MAX_FRAMES_OBS))
        info = {"frames": frames, "action": ACTION_NAMES[k], "parameter": param}
        return obs, float(reward), terminal, False, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() needs PlatformEnv(render_mode='rgb_array').")
            return None
        from rllib_ext.envs.rendering import draw_platform

        p, (e1, e2) = self.player, self.enemies
        return draw_platform(self, (p.x, p.y, e1.x, e2.x), **_SPRITES)

    def render_frames(self) -> list[np.ndarray]:
        """Every simulated frame of the last macro-step, for smooth animations."""
        from rllib_ext.envs.rendering import draw_platform

        if self.render_mode is None:
            raise ValueError("render_frames() needs PlatformEnv(render_mode='rgb_array').")
        return [draw_platform(self, s, **_SPRITES) for s in self.frame_log] + [self.render()]

    # -- simulation ------------------------------------------------------------------------------
    def _on_platforms(self) -> bool:
        x, y = self.player.x, self.player.y
        for p in self.platforms:  # runs every frame, so no per-platform method call
            # Exact float equality, as in the original: landing snaps y to the platform top.
            if -PLAYER_W <= x - p.x <= p.w and y - p.y == p.h:
                return True
        return False

    def _update(self, k: int, param: float) -> tuple[float, bool]:
        """One frame of length DT. Returns (reward so far in this macro-step, terminal)."""
        player, rng = self.player, self.np_random
        if self.render_mode is not None:
            self.frame_log.append(
                (player.x, player.y, self.enemies[0].x, self.enemies[1].x)
            )
        # The original checks "on a platform?" twice, before and after the action; actions only
        # change the velocity, never the position, so one check gives both answers.
        on_ground = self._on_platforms()
        if on_ground:
            if k == RUN:
                player.run(param, DT, rng)
            elif k == HOP:
                player.jump_to(param, 35.0, HOP_DEV, rng)
            else:
                player.jump_to(param, 25.0, LEAP_DEV, rng)
        else:
            player.fall(rng)
        if on_ground:
            player.ground_bound()
        enemy = self.enemies[1] if player.x > self.platforms[1].x else self.enemies[0]
        player.update(DT)
        enemy.update(DT, rng)
        for p in self.platforms:
            if player.colliding(p.x, p.y, p.w, p.h):
                player.decollide(p)
                player.vx = 0.0
        reward = (player.x - self.xpos) / self.right_bound
        return self._terminal_check(reward)

    def _terminal_check(self, reward: float) -> tuple[float, bool]:
        player = self.player
        end = player.y < self.lower_bound + PLATFORM_HEIGHT  # fell into a gap
        for e in self.enemies:
            if player.colliding(e.x, e.y, ENEMY_W, ENEMY_H):
                end = True
        if player.x >= self.right_bound:  # reached the goal
            reward = (self.right_bound - self.xpos) / self.right_bound
            end = True
        return reward, end

    def _state(self) -> np.ndarray:
        player = self.player
        enemy = self.enemies[1] if player.x > self.platforms[1].x else self.enemies[0]
        x = player.x
        if x < WIDTH1 + GAP1:
            features = (WIDTH1, WIDTH2, GAP1, 0.0, HEIGHT2 - HEIGHT1)
        elif x < WIDTH1 + GAP1 + WIDTH2 + GAP2:
            features = (WIDTH2, WIDTH3, GAP2, WIDTH1 + GAP1, HEIGHT3 - HEIGHT2)
        else:
            features = (WIDTH3, 0.0, 0.0, WIDTH1 + GAP1 + WIDTH2 + GAP2, 0.0)
        state = np.array((x, player.vx, enemy.x, enemy.dx, *features))
        return ((state + SHIFT_VECTOR) / SCALE_VECTOR).astype(np.float32)


__all__ = ["PlatformEnv", "ACTION_NAMES", "PARAMETERS_MIN", "PARAMETERS_MAX"]
