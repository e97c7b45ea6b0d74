"""Robot Soccer Goal (Masson, Ranchod & Konidaris, AAAI 2016) as a gymnasium 1.x environment.

A faithful port of the dynamics of cycraig/gym-goal (itself a port of WarwickMasson/aaai-goal):
a striker must score past a goalkeeper on half a RoboCup-style pitch (x in [0, 20], y in
[-15, 15], goal mouth |y| <= 7.01 at x = 20).

Actions ``(k, (p_kick_to, p_shoot_left, p_shoot_right))``:

- ``k = 0`` kick-to, parameter ``(x, y)`` in ``[0, 40] x [-15, 15]``;
- ``k = 1`` shoot-goal-left and ``k = 2`` shoot-goal-right, parameter ``y`` in ``[-7.01, 7.01]``.

The chosen parameter is clipped to its bounds. One ``step`` is a macro-action: kick-to runs until
the player can kick the ball again and the ball has slowed below 0.1; a shot runs until the
episode ends. The episode ends with +50 for a goal, or with ``-distance(ball, goal)`` when the
keeper catches the ball, the ball leaves the field, or after 100 macro-steps.

Observation ``(state, frames)``: the 14 *unscaled* features ``[player x, y, vx, vy, angle,
keeper x, y, vx, vy, angle, ball x, y, vx, vy]`` and the number of frames of the last step.

Quirks of the original, kept on purpose because published results depend on them:

- **kick-to uses x for both coordinates**: the original passes only ``parameters[0]`` (the x
  scalar) to ``kick_to``, which broadcasts it, so the kick target is ``(x, x)`` and the y
  parameter has no effect at all;
- **the two shoot actions are the same routine**: both call ``shoot_goal(y)`` with the same
  range; "left" and "right" only differ in the initial policy bias the MP-DQN scripts use;
- the 100-step limit ends the episode as *terminated* (with the ``-distance`` reward), not
  truncated, as the original reports it (``info["time_limit"]`` is True then);
- angles are not normalised, so the orientation features can leave ``[-pi, pi]``.

Differences from the original, none of which changes the dynamics: randomness comes from
gymnasium's ``np_random`` (a ``Generator``; same draws in the same order, different stream);
Python floats instead of numpy 2-vectors; ``frames`` capped at 199 in the observation
(``info["frames"]`` is exact); Pillow rendering; a guard that raises after 100 000 frames in one
macro-step (the original would loop forever; never reached in practice).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rllib_ext.envs.actions import (
    check_render_mode,
    parameterised_action_space,
    parse_parameterised_action,
)

# -- constants (config.py of the original: "robot soccer server manual 7.07") -----------------
PLAYER_CONFIG = {"POWER_RATE": 0.006, "SIZE": 0.9, "RAND": 0.1, "ACCEL_MAX": 1.0,
                 "SPEED_MAX": 1.0, "DECAY": 0.4}
BALL_CONFIG = {"POWER_RATE": 0.027, "SIZE": 0.4, "RAND": 0.05, "ACCEL_MAX": 2.7,
               "SPEED_MAX": 2.7, "DECAY": 0.94}
MINPOWER, MAXPOWER = -100, 100
KICKABLE = PLAYER_CONFIG["SIZE"] + 0.7  # 1.6
CATCHABLE = 2.0
CATCH_PROBABILITY = 1.0
INERTIA_MOMENT = 5.0
PITCH_LENGTH, PITCH_WIDTH = 40, 30
GOAL_AREA_LENGTH, GOAL_AREA_WIDTH = 5.5, 18.32
GOAL_WIDTH, GOAL_DEPTH = 14.02, 2.44

SCALE_VECTOR = np.array([PITCH_LENGTH / 2, PITCH_WIDTH, 2.0, 2.0, 2 * np.pi,
                         PITCH_LENGTH / 2, PITCH_WIDTH, 2.0, 2.0, 2 * np.pi,
                         PITCH_LENGTH / 2, PITCH_WIDTH, 6.0, 6.0])
SHIFT_VECTOR = np.array([0.0, PITCH_WIDTH / 2, 1.0, 1.0, np.pi,
                         0.0, PITCH_WIDTH / 2, 1.0, 1.0, np.pi,
                         0.0, PITCH_WIDTH / 2, 3.0, 3.0])
LOW_VECTOR = -SHIFT_VECTOR
HIGH_VECTOR = SCALE_VECTOR - SHIFT_VECTOR

KICK_TO, SHOOT_GOAL = "kickto", "shootgoal"
ACTION_LOOKUP = (KICK_TO, SHOOT_GOAL, SHOOT_GOAL)
ACTION_NAMES = ("kick_to", "shoot_goal_left", "shoot_goal_right")
PARAMETERS_MIN = (np.array([0.0, -PITCH_WIDTH / 2]), np.array([-GOAL_WIDTH / 2]),
                  np.array([-GOAL_WIDTH / 2]))
PARAMETERS_MAX = (np.array([PITCH_LENGTH, PITCH_WIDTH / 2]), np.array([GOAL_WIDTH / 2]),
                  np.array([GOAL_WIDTH / 2]))
MAX_TIME = 100
MAX_FRAMES_OBS = 199
MAX_FRAMES_PER_STEP = 100_000


def _bound(value: float, lower: float, upper: float) -> float:
    if value < lower:
        return lower
    if value > upper:
        return upper
    return value


def _norm(x: float, y: float) -> float:
    return math.sqrt(x * x + y * y)


def norm_angle(angle: float) -> float:
    """Normalises an angle into [-pi, pi] (by whole turns, as the original)."""
    while angle > np.pi:
        angle -= 2 * np.pi
    while angle < -np.pi:
        angle += 2 * np.pi
    return angle


def _angle_close(angle1: float, angle2: float) -> bool:
    return abs(norm_angle(angle1 - angle2)) < np.pi / 8


class _Entity:
    """A disc with position, velocity, per-frame decay and noisy acceleration."""

    __slots__ = ("x", "y", "vx", "vy", "size", "rand", "accel_max", "speed_max", "power_rate",
                 "decay")

    def __init__(self, config: dict, x: float, y: float):
        self.rand = config["RAND"]
        self.accel_max = config["ACCEL_MAX"]
        self.speed_max = config["SPEED_MAX"]
        self.power_rate = config["POWER_RATE"]
        self.decay = config["DECAY"]
        self.size = config["SIZE"]
        self.x, self.y = x, y
        self.vx, self.vy = 0.0, 0.0

    def update(self) -> None:
        self.x += self.vx
        self.y += self.vy
        self.vx *= self.decay
        self.vy *= self.decay

    def accelerate(self, power: float, theta: float, rng: np.random.Generator) -> None:
        """Power along theta with multiplicative direction noise and speed-scaled noise.

        ``low + (high - low) * rng.random()`` is exactly ``rng.uniform(low, high)`` (numpy's own
        formula, same stream) at a quarter of the call overhead; this runs every frame.
        """
        rand = self.rand
        theta = (1 + (-rand + (rand + rand) * rng.random())) * theta
        rmax = rand * _norm(self.vx, self.vy)
        noise_x = -rmax + (rmax + rmax) * rng.random()
        noise_y = -rmax + (rmax + rmax) * rng.random()
        rate = float(power) * self.power_rate
        ax = _bound(rate * math.cos(theta) + noise_x, -self.accel_max, self.accel_max)
        ay = _bound(rate * math.sin(theta) + noise_y, -self.accel_max, self.accel_max)
        self.vx = _bound(self.vx + ax, -self.speed_max, self.speed_max)
        self.vy = _bound(self.vy + ay, -self.speed_max, self.speed_max)

    def distance(self, other: _Entity) -> float:
        return _norm(self.x - other.x, self.y - other.y)

    def angle_to(self, x: float, y: float) -> float:
        return math.atan2(y - self.y, x - self.x)

    def colliding(self, other: _Entity) -> bool:
        return self.distance(other) < self.size + other.size

    def decollide(self, other: _Entity) -> None:
        """Push both apart by half the overlap along the line of centres; bounce both."""
        overlap = (self.size + other.size - self.distance(other)) / 2
        theta1 = self.angle_to(other.x, other.y)
        theta2 = other.angle_to(self.x, self.y)
        self.x += overlap * math.cos(theta2)
        self.y += overlap * math.sin(theta2)
        other.x += overlap * math.cos(theta1)
        other.y += overlap * math.sin(theta1)
        self.vx, self.vy = -self.vx, -self.vy
        other.vx, other.vy = -other.vx, -other.vy

    def in_area(self, left: float, right: float, bot: float, top: float) -> bool:
        return left <= self.x <= right and bot <= self.y <= top


class _Ball(_Entity):
    __slots__ = ()

    def __init__(self, x: float, y: float):
        super().__init__(BALL_CONFIG, x, y)

    def goal_distance(self) -> float:
        """Distance to the goal mouth (0 inside it)."""
        half = GOAL_WIDTH / 2
        if self.x < PITCH_LENGTH / 2:
            if self.y < -half:
                return _norm(self.x - PITCH_LENGTH / 2, self.y + half)
            if self.y > half:
                return _norm(self.x - PITCH_LENGTH / 2, self.y - half)
            return PITCH_LENGTH / 2 - self.x
        if self.y < -half:
            return half - self.y
        if self.y > half:
            return self.y - half
        return 0.0

    def in_field(self) -> bool:
        return self.in_area(0, PITCH_LENGTH / 2, -PITCH_WIDTH / 2, PITCH_WIDTH / 2)

    def in_net(self) -> bool:
        return self.in_area(PITCH_LENGTH / 2, PITCH_LENGTH / 2 + GOAL_DEPTH,
                            -GOAL_WIDTH / 2, GOAL_WIDTH / 2)


class _Player(_Entity):
    __slots__ = ("orientation",)

    def __init__(self, x: float, y: float, orientation: float):
        super().__init__(PLAYER_CONFIG, x, y)
        self.orientation = orientation

    def kick_power(self, ball: _Ball) -> float:
        dir_diff = abs(norm_angle(self.angle_to(ball.x, ball.y) - self.orientation))
        return 1 - 0.25 * dir_diff / np.pi - 0.25 * self.distance(ball) / KICKABLE

    def facing_ball(self, ball: _Ball) -> bool:
        return _angle_close(self.orientation, self.angle_to(ball.x, ball.y))

    def turn(self, angle: float) -> None:
        moment = norm_angle(angle)
        self.orientation = self.orientation + moment / (1 + INERTIA_MOMENT * _norm(self.vx,
                                                                                   self.vy))

    def dash(self, power: float, rng) -> None:
        self.accelerate(_bound(power, MINPOWER, MAXPOWER), self.orientation, rng)

    def can_kick(self, ball: _Ball) -> bool:
        return self.distance(ball) <= KICKABLE

    def kick_ball(self, ball: _Ball, power: float, direction: float, rng) -> None:
        if self.can_kick(ball):
            power = _bound(power, MINPOWER, MAXPOWER)
            power *= self.kick_power(ball)
            ball.accelerate(power, self.orientation + direction, rng)

    def to_ball(self, ball: _Ball, rng) -> None:
        if not self.facing_ball(ball):
            self.turn(self.angle_to(ball.x, ball.y) - self.orientation)  # face the ball
        elif not self.can_kick(ball):
            self.dash(10, rng)

    def kick_to(self, ball: _Ball, target_x: float, target_y: float, rng) -> None:
        """Kick so that the ball, decaying by 0.94 per frame, comes to rest at the target."""
        if not self.can_kick(ball):
            self.to_ball(ball, rng)
            return
        accel_x = (1 - ball.decay) * (target_x - self.x) - ball.vx
        accel_y = (1 - ball.decay) * (target_y - self.y) - ball.vy
        power = _norm(accel_x, accel_y) / (self.kick_power(ball) * ball.power_rate)
        theta = math.atan2(accel_y, accel_x)
        # kick_towards(direction) = kick_ball(direction - orientation)
        self.kick_ball(ball, power, theta - self.orientation, rng)

    def shoot_goal(self, ball: _Ball, ypos: float, rng) -> None:
        ypos = _bound(ypos, -GOAL_WIDTH / 2, GOAL_WIDTH / 2)
        self.kick_to(ball, PITCH_LENGTH / 2 + ball.size, ypos, rng)


class _Goalie(_Player):
    __slots__ = ()

    def move(self, ball: _Ball, rng) -> None:
        """Intercept the ball's line if it heads for goal, else shadow its resting point."""
        end_x = ball.x + ball.vx / (1 - ball.decay)
        end_y = ball.y + ball.vy / (1 - ball.decay)
        diff_x, diff_y = end_x - ball.x, end_y - ball.y
        grad = diff_y / diff_x if diff_x != 0.0 else 0
        yint = ball.y - grad * ball.x
        goal_y = grad * PITCH_LENGTH / 2 + yint
        if (
            end_x > PITCH_LENGTH / 2
            and -GOAL_WIDTH / 2 - CATCHABLE <= goal_y <= GOAL_WIDTH / 2 + CATCHABLE
            and grad != 0
        ):
            grad2 = -1 / grad
            yint2 = self.y - grad2 * self.x
            ballx = (yint2 - yint) / (grad - grad2)
            bally = grad * ballx + yint
            self.accelerate(20, self.angle_to(ballx, bally), rng)
            self.orientation = self.angle_to(ballx, bally)
        else:
            self.orientation = self.angle_to(end_x, end_y)
            self.accelerate(8, self.angle_to(end_x, end_y), rng)

    def can_catch(self, ball: _Ball, rng) -> bool:
        # The draw happens whatever the distance, as in the original (keeps the stream aligned).
        return rng.random() <= CATCH_PROBABILITY and self.distance(ball) < CATCHABLE


def keeper_target(ball_x: float, ball_y: float) -> tuple[float, float]:
    """Where the keeper starts: on the ball-to-goal-centre line, inside the goal area."""
    grad = -ball_y / (PITCH_LENGTH / 2 - ball_x)
    yint = ball_y - grad * ball_x
    if ball_x < PITCH_LENGTH / 2 - GOAL_AREA_LENGTH:
        xval = ball_x
    elif ball_y < -GOAL_AREA_WIDTH / 2:
        xval = (-GOAL_AREA_WIDTH / 2 - yint) / grad
    else:
        xval = (GOAL_AREA_WIDTH / 2 - yint) / grad
    xval = _bound(xval, PITCH_LENGTH / 2 - GOAL_AREA_LENGTH, PITCH_LENGTH / 2)
    yval = _bound(grad * xval + yint, -GOAL_AREA_WIDTH / 2, GOAL_AREA_WIDTH / 2)
    return xval, yval


class GoalEnv(gym.Env):
    """The Robot Soccer Goal domain; see the module docstring (quirks included)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = None):
        check_render_mode(type(self), render_mode)
        self.render_mode = render_mode
        self.action_space = parameterised_action_space(PARAMETERS_MIN, PARAMETERS_MAX)
        self.observation_space = spaces.Tuple((
            spaces.Box(LOW_VECTOR.astype(np.float32), HIGH_VECTOR.astype(np.float32),
                       dtype=np.float32),
            spaces.Discrete(200),
        ))
        self.player: _Player | None = None
        self.goalie: _Goalie | None = None
        self.ball: _Ball | None = None
        self.time = 0
        # (player x, y, angle, keeper x, y, angle, ball x, y) per frame of the last macro-step;
        # only recorded when rendering.
        self.frame_log: list[tuple] = []

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        px, py = 0.0, float(self.np_random.uniform(-PITCH_WIDTH / 2, PITCH_WIDTH / 2))
        angle = math.atan2(0.0 - py, PITCH_LENGTH / 2 - px)  # face the goal centre
        # Just inside kicking range, so the first state is always kickable.
        reach = KICKABLE - 1e-12
        bx, by = px + reach * math.cos(angle), py + reach * math.sin(angle)
        gx, gy = keeper_target(bx, by)
        self.player = _Player(px, py, angle)
        self.ball = _Ball(bx, by)
        self.goalie = _Goalie(gx, gy, math.atan2(by - gy, bx - gx))
        self.time = 0
        self.frame_log = []
        return (self._state(), 0), {}

    def step(self, action):
        if self.player is None:
            raise RuntimeError("Call reset() before step().")
        k, params = parse_parameterised_action(action, self.action_space)
        param = np.clip(params[k], PARAMETERS_MIN[k], PARAMETERS_MAX[k])
        act = ACTION_LOOKUP[k]
        self.frame_log = []
        self.time += 1
        # The clipped parameter as a tuple of floats: its length depends on the action, and a
        # gymnasium vector env batches an info array only when its shape never changes.
        info = {"action": ACTION_NAMES[k], "parameter": tuple(float(v) for v in param),
                "time_limit": False,
                "goal": False}
        if self.time == MAX_TIME:
            info.update(frames=0, time_limit=True)
            return (self._state(), 0), -self.ball.goal_distance(), True, False, info
        frames, run = 0, True
        reward, end = 0.0, False
        while run:
            frames += 1
            if frames > MAX_FRAMES_PER_STEP:
                raise RuntimeError(
                    f"Goal macro-step {act} did not end within {MAX_FRAMES_PER_STEP} frames."
                )
            reward, end = self._update(act, param)
            run = not end
            if run:
                run = not self.player.can_kick(self.ball)
                if act == KICK_TO:
                    run = _norm(self.ball.vx, self.ball.vy) > 0.1 or run
                else:  # SHOOT_GOAL: keep playing until the episode ends
                    run = not end
        info["frames"] = frames
        info["goal"] = end and self.ball.in_net()
        return (self._state(), min(frames, MAX_FRAMES_OBS)), float(reward), end, False, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() needs GoalEnv(render_mode='rgb_array').")
            return None
        from rllib_ext.envs.rendering import draw_goal

        return draw_goal(self._render_state(), _geometry())

    def render_frames(self) -> list[np.ndarray]:
        """Every simulated frame of the last macro-step, for smooth animations."""
        from rllib_ext.envs.rendering import draw_goal

        if self.render_mode is None:
            raise ValueError("render_frames() needs GoalEnv(render_mode='rgb_array').")
        return [draw_goal(s, _geometry()) for s in self.frame_log] + [self.render()]

    # -- simulation ------------------------------------------------------------------------------
    def _render_state(self) -> tuple:
        p, g, b = self.player, self.goalie, self.ball
        return (p.x, p.y, p.orientation, g.x, g.y, g.orientation, b.x, b.y)

    def _update(self, act: str, param: np.ndarray) -> tuple[float, bool]:
        rng = self.np_random
        if self.render_mode is not None:
            self.frame_log.append(self._render_state())
        if act == KICK_TO:
            # QUIRK kept from the original: only parameters[0] (x) is passed and broadcast,
            # so the target is (x, x); the y parameter is ignored.
            x = float(param[0])
            self.player.kick_to(self.ball, x, x, rng)
        else:
            self.player.shoot_goal(self.ball, float(param[0]), rng)
        self.goalie.move(self.ball, rng)
        entities = (self.player, self.goalie, self.ball)
        for e in entities:
            e.update()
        for i, e1 in enumerate(entities):  # one pass over the pairs
            for e2 in entities[i + 1:]:
                if e1.colliding(e2):
                    e1.decollide(e2)
        return self._terminal_check()

    def _terminal_check(self) -> tuple[float, bool]:
        if self.ball.in_net():
            return 50.0, True
        if self.goalie.can_catch(self.ball, self.np_random) or not self.ball.in_field():
            return -self.ball.goal_distance(), True
        return 0.0, False

    def _state(self) -> np.ndarray:
        p, g, b = self.player, self.goalie, self.ball
        return np.array(
            (p.x, p.y, p.vx, p.vy, p.orientation, g.x, g.y, g.vx, g.vy, g.orientation,
             b.x, b.y, b.vx, b.vy),
            dtype=np.float32,
        )


def _geometry():
    """The constants the renderer draws with (rendering imports nothing from this module)."""
    from rllib_ext.envs.rendering import GoalGeometry

    return GoalGeometry(
        pitch_length=PITCH_LENGTH, pitch_width=PITCH_WIDTH, goal_width=GOAL_WIDTH,
        goal_depth=GOAL_DEPTH, goal_area_length=GOAL_AREA_LENGTH,
        goal_area_width=GOAL_AREA_WIDTH, kickable=KICKABLE, catchable=CATCHABLE,
        player_size=PLAYER_CONFIG["SIZE"], ball_size=BALL_CONFIG["SIZE"])
