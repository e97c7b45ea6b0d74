"""Parameterised-action domains: Platform and Robot Soccer Goal, plus agent-side wrappers.

Registered on ``import rllib_ext`` as ``rllib_ext/Platform-v0`` and ``rllib_ext/Goal-v0`` (with
gymnasium and with RLlib/Tune).
"""

from rllib_ext.envs.goal import GoalEnv
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
    "PlatformEnv",
    "ScaledFlatObservation",
    "ScaledParameterisedActions",
    "make",
    "wrap_for_agents",
]
