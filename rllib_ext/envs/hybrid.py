"""gym-hybrid's Moving and Sliding domains (thomashirtz/gym-hybrid), written for gymnasium from
the public description of that package (its code is not copied).

An agent on the field ``[-1, 1]^2`` must reach a circular target (radius 0.1) and *stop* in it.
Three actions, each with at most one continuous parameter:

- 0 accelerate by ``max_acceleration * clip(p_0, 0, 1)`` (parameter 0, in ``[0, 1]``);
- 1 turn the heading by ``max_turn * clip(p_1, -1, 1)`` (parameter 1, in ``[-1, 1]``);
- 2 brake: speed ``- break_value`` (0 once below it); no parameter.

Action space: the flat ``Tuple(Discrete(3), Box([0, -1], [1, 1]))`` of the original; with
RLlib's parameterised-action algorithms use ``param_layout=[1, 1, 0]`` (brake owns no
parameter). After every action the agent moves ``delta_t * speed`` along its heading θ
(**Moving**) or along its velocity direction φ (**Sliding**: accelerating adds the polar vector
``(a, θ)`` to the velocity ``(speed, φ)``, turning changes θ only, so the agent keeps sliding the
old way until it accelerates; braking to 0 sets φ = θ).

Reward and termination, checked in this order after the move (the step counter counts first):

1. stopped (speed exactly 0) inside the target: ``progress + 1``, terminated;
2. outside the field, or more than ``max_step`` steps: ``-1``, terminated (an episode lasts at
   most ``max_step + 1`` steps; the time is in the observation, so this end is part of the task
   and reported as ``terminated``, as the original does);
3. otherwise ``progress - penalty``, with ``progress = previous distance - distance`` to the
   target centre.

Observation (10, float32): ``[x, y, speed, cos θ, sin θ, target x, target y, distance,
in target (0/1), step / max_step]``. (The original declares ``Box(1, -1)``, low above high; the
bounds here are the true ones: speed at most ``max_acceleration (max_step + 1)``, the position
at most one move past the field.)

Reset draws, from the env's ``np_random`` in this order: the target centre ``U(-0.9, 0.9)^2``,
the agent's position ``U(-1, 1)^2`` and heading ``U(0, 2π)``; speed 0. (The original keeps
Sliding's φ across episodes; with speed 0 the first acceleration sets φ = θ whatever φ was, so
resetting φ = θ here changes nothing.)
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rllib_ext.envs.actions import check_render_mode

FIELD = 1.0
TARGET_RADIUS = 0.1
ACCELERATE, TURN, BRAKE = 0, 1, 2


class HybridEnv(gym.Env):
    """Moving (``sliding=False``) or Sliding (``sliding=True``); see the module docstring.

    Args:
        max_turn: Largest heading change of one turn action, radians (π/2).
        max_acceleration: Speed added by accelerate with parameter 1 (0.5).
        delta_t: Time step of the move after each action (0.005).
        max_step: Steps before the episode ends with -1 (200).
        penalty: Per-step cost (0.001).
        break_value: Speed removed by one brake action (0.1).
        render_mode: Only None (no rendering).
    """

    metadata = {"render_modes": []}
    sliding = False

    def __init__(self, max_turn: float = math.pi / 2, max_acceleration: float = 0.5,
                 delta_t: float = 0.005, max_step: int = 200, penalty: float = 0.001,
                 break_value: float = 0.1, render_mode: str | None = None):
        check_render_mode(type(self), render_mode)
        if not (max_turn > 0 and max_acceleration > 0 and delta_t > 0 and max_step > 0
                and penalty >= 0 and break_value > 0):
            raise ValueError(
                "Need max_turn, max_acceleration, delta_t, max_step, break_value > 0 and "
                f"penalty >= 0; got {max_turn}, {max_acceleration}, {delta_t}, {max_step}, "
                f"{break_value}, {penalty}.")
        self.max_turn, self.max_acceleration = float(max_turn), float(max_acceleration)
        self.delta_t, self.max_step = float(delta_t), int(max_step)
        self.penalty, self.break_value = float(penalty), float(break_value)
        self.action_space = spaces.Tuple((
            spaces.Discrete(3),
            spaces.Box(np.array([0.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32),
                       dtype=np.float32),
        ))
        # True bounds: at most max_step + 1 accelerations, and the agent is inside the field
        # before every move (the episode ends as soon as it is not).
        edge = FIELD - TARGET_RADIUS
        top_speed = self.max_acceleration * (self.max_step + 1)
        reach = FIELD + self.delta_t * top_speed
        far = math.hypot(reach + edge, reach + edge)
        low = np.array([-reach, -reach, 0, -1, -1, -edge, -edge, 0, 0, 0], np.float32)
        high = np.array([reach, reach, top_speed, 1, 1, edge, edge, far, 1,
                         (self.max_step + 1) / self.max_step], np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.x = self.y = self.theta = self.phi = self.speed = 0.0
        self.target = np.zeros(2)
        self.steps = 0
        self.distance = 0.0

    # ------------------------------------------------------------------------------ dynamics
    def _accelerate(self, amount: float) -> None:
        if not self.sliding:
            self.speed += amount
            return
        # Add the polar vector (amount, theta) to the velocity (speed, phi).
        d = self.phi - self.theta
        along = amount + self.speed * math.cos(d)
        across = self.speed * math.sin(d)
        self.speed = math.sqrt(amount ** 2 + self.speed ** 2
                               + 2 * amount * self.speed * math.cos(d))
        self.phi = self.theta + math.atan2(across, along)

    def _brake(self) -> None:
        self.speed = 0.0 if self.speed < self.break_value else self.speed - self.break_value
        if self.sliding and self.speed == 0.0:
            self.phi = self.theta

    def _apply(self, k: int, params: np.ndarray) -> None:
        if k == ACCELERATE:
            self._accelerate(self.max_acceleration * float(np.clip(params[0], 0.0, 1.0)))
        elif k == TURN:
            turn = self.max_turn * float(np.clip(params[1], -1.0, 1.0))
            self.theta = (self.theta + turn) % (2 * math.pi)
        else:
            self._brake()
        direction = self.phi if self.sliding else self.theta
        self.x += self.delta_t * self.speed * math.cos(direction)
        self.y += self.delta_t * self.speed * math.sin(direction)

    # ------------------------------------------------------------------------------ gym API
    def _distance(self) -> float:
        return float(math.hypot(self.x - self.target[0], self.y - self.target[1]))

    def _observation(self) -> np.ndarray:
        return np.array([
            self.x, self.y, self.speed, math.cos(self.theta), math.sin(self.theta),
            self.target[0], self.target[1], self.distance,
            float(self.distance < TARGET_RADIUS), self.steps / self.max_step,
        ], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        edge = FIELD - TARGET_RADIUS
        self.target = self.np_random.uniform(-edge, edge, 2)
        self.x, self.y = (float(v) for v in self.np_random.uniform(-FIELD, FIELD, 2))
        self.theta = float(self.np_random.uniform(0.0, 2 * math.pi))
        self.phi = self.theta
        self.speed = 0.0
        self.steps = 0
        self.distance = self._distance()
        return self._observation(), {}

    def step(self, action):
        k, params = self._parse(action)
        self.steps += 1
        self._apply(k, params)
        previous, self.distance = self.distance, self._distance()
        progress = previous - self.distance
        if self.speed == 0.0 and self.distance < TARGET_RADIUS:
            reward, terminated = progress + 1.0, True
        elif abs(self.x) > FIELD or abs(self.y) > FIELD or self.steps > self.max_step:
            reward, terminated = -1.0, True
        else:
            reward, terminated = progress - self.penalty, False
        return self._observation(), float(reward), terminated, False, {}

    def _parse(self, action) -> tuple[int, np.ndarray]:
        """``(k, [p_0, p_1])`` checked: a bad action must not corrupt the state."""
        try:
            k, params = action
            params = np.asarray(params, dtype=np.float64).reshape(2)
        except (TypeError, ValueError):
            raise ValueError(f"Expected an action (k, [p_0, p_1]) in {self.action_space}, got "
                             f"{action!r}.") from None
        if int(k) != k or not 0 <= int(k) < 3:
            raise ValueError(f"Action index must be 0, 1 or 2, got {k!r}.")
        if not np.all(np.isfinite(params)):
            raise ValueError(f"Action parameters must be finite, got {params}.")
        return int(k), params


class MovingEnv(HybridEnv):
    """gym-hybrid's Moving-v0: the agent moves along its heading."""

    sliding = False


class SlidingEnv(HybridEnv):
    """gym-hybrid's Sliding-v0: the agent keeps its velocity direction until it accelerates."""

    sliding = True
