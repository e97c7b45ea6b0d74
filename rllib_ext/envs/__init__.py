"""Parameterised-action domains: Platform, Robot Soccer Goal, gym-hybrid's Moving and Sliding,
plus agent-side wrappers.

Registered on ``import rllib_ext`` as ``rllib_ext/Platform-v0``, ``rllib_ext/Goal-v0``,
``rllib_ext/Moving-v0`` and ``rllib_ext/Sliding-v0`` (with gymnasium and with RLlib/Tune).
"""

from rllib_ext.envs.goal import GoalEnv
from rllib_ext.envs.hybrid import MovingEnv, SlidingEnv
from rllib_ext.envs.platform import PlatformEnv
from rllib_ext.envs.wrappers import (
    GoalFeatures,
    ScaledFlatObservation,
    ScaledParameterisedActions,
    make,
    wrap_for_agents,
)

__all__ = [
    "GoalEnv",
    "GoalFeatures",
    "MovingEnv",
    "PlatformEnv",
    "ScaledFlatObservation",
    "ScaledParameterisedActions",
    "SlidingEnv",
    "make",
    "wrap_for_agents",
]
