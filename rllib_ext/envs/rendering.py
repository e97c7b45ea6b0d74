"""RGB frames of the Platform and Goal domains drawn with Pillow (no pygame), and GIF writing."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Platform: world x in [0, 1035] -> pixels 1:1; world y (platform tops at 40, jumps reach ~110)
# drawn 50 px above the bottom edge, as in the original's 1035x300 window.
PLATFORM_SIZE = (1035, 300)
PLATFORM_Y_OFFSET = 50
SKY, GROUND, PLAYER, ENEMY = (214, 234, 248), (120, 85, 60), (40, 90, 200), (200, 40, 40)

# Goal: 20 px per world unit over x in [0, 20 + goal depth], y in [-15, 15].
GOAL_SCALE = 20
GRASS, LINE, BALL = (0, 125, 0), (255, 255, 255), (0, 0, 0)
STRIKER, KEEPER = (255, 255, 255), (220, 0, 0)


def draw_platform(env, state: tuple[float, float, float, float], *,
                  player_size: tuple[float, float],
                  enemy_size: tuple[float, float]) -> np.ndarray:
    """HxWx3 uint8 frame: platforms, gaps (sky), enemies and the player.

    ``state`` = (player x, player y, enemy-1 x, enemy-2 x); ``player_size`` and
    ``enemy_size`` = (width, height) (the env's constants: it calls this, not the reverse).
    """
    width, height = PLATFORM_SIZE
    image = Image.new("RGB", PLATFORM_SIZE, SKY)
    draw = ImageDraw.Draw(image)

    def box(x: float, y: float, w: float, h: float, colour) -> None:
        top = height - (y + h + PLATFORM_Y_OFFSET)
        bottom = height - (y + PLATFORM_Y_OFFSET)
        draw.rectangle((x, top, x + w - 1, bottom - 1), fill=colour)

    for p in env.platforms:
        box(p.x, p.y, p.w, p.h, GROUND)
    player_x, player_y, enemy1_x, enemy2_x = state
    for enemy, x in zip(env.enemies, (enemy1_x, enemy2_x), strict=True):
        box(x, enemy.y, *enemy_size, ENEMY)
    box(player_x, player_y, *player_size, PLAYER)
    return np.asarray(image, dtype=np.uint8)


@dataclasses.dataclass(frozen=True)
class GoalGeometry:
    """What :func:`draw_goal` needs of the Goal domain's constants (metres)."""

    pitch_length: float
    pitch_width: float
    goal_width: float
    goal_depth: float
    goal_area_length: float
    goal_area_width: float
    kickable: float
    catchable: float
    player_size: float
    ball_size: float


def draw_goal(state: tuple, geometry: GoalGeometry) -> np.ndarray:
    """HxWx3 uint8 frame: pitch lines, goal area, posts, striker, keeper (with their heading and
    kick / catch radii) and the ball. ``state`` = (px, py, p_angle, gx, gy, g_angle, bx, by)."""
    g = geometry
    PITCH_LENGTH, PITCH_WIDTH, GOAL_WIDTH, GOAL_DEPTH = (  # noqa: N806 (the domain's names)
        g.pitch_length, g.pitch_width, g.goal_width, g.goal_depth)
    GOAL_AREA_LENGTH, GOAL_AREA_WIDTH, KICKABLE, CATCHABLE = (  # noqa: N806
        g.goal_area_length, g.goal_area_width, g.kickable, g.catchable)
    s = GOAL_SCALE
    half = PITCH_LENGTH / 2
    size = (int(s * (half + GOAL_DEPTH)), int(s * PITCH_WIDTH))
    image = Image.new("RGB", size, GRASS)
    draw = ImageDraw.Draw(image)

    def px(x: float, y: float) -> tuple[float, float]:
        return s * x, s * (y + PITCH_WIDTH / 2)

    def circle(x: float, y: float, r: float, fill=None, outline=None) -> None:
        cx, cy = px(x, y)
        draw.ellipse((cx - s * r, cy - s * r, cx + s * r, cy + s * r), fill=fill, outline=outline)

    draw.line((px(half, -PITCH_WIDTH / 2), px(half, PITCH_WIDTH / 2)), fill=LINE)  # goal line
    area_x = half - GOAL_AREA_LENGTH
    draw.rectangle((*px(area_x, -GOAL_AREA_WIDTH / 2), *px(half, GOAL_AREA_WIDTH / 2)),
                   outline=LINE)
    for post_y in (-GOAL_WIDTH / 2, GOAL_WIDTH / 2):
        draw.line((px(half, post_y), px(half + GOAL_DEPTH, post_y)), fill=LINE, width=2)
    player_x, player_y, player_angle, keeper_x, keeper_y, keeper_angle, ball_x, ball_y = state
    radius = g.player_size
    for (x, y, angle, colour, reach) in (
        (player_x, player_y, player_angle, STRIKER, KICKABLE),
        (keeper_x, keeper_y, keeper_angle, KEEPER, CATCHABLE),
    ):
        circle(x, y, reach, outline=LINE)
        circle(x, y, radius, fill=colour)
        tip = (x + radius * math.cos(angle), y + radius * math.sin(angle))
        draw.line((px(x, y), px(*tip)), fill=BALL, width=2)
    circle(ball_x, ball_y, g.ball_size, fill=BALL)
    return np.asarray(image, dtype=np.uint8)


def save_gif(frames: Sequence[np.ndarray], path: str | Path, *, fps: int = 20) -> Path:
    """Writes HxWx3 uint8 frames as an animated GIF (looping); returns the path."""
    if not frames:
        raise ValueError("save_gif needs at least one frame.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=max(1, round(1000 / fps)), loop=0)
    return path
