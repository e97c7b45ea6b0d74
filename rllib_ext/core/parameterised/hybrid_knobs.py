"""The hybrid policy's config knobs, shared by the on-policy algorithms that act in a
parameterised action space (``HPPOConfig``, and ``PGConfig`` for such a space): they become the
module's ``model_config`` keys of :mod:`~rllib_ext.core.parameterised.torch.hybrid_policy`.

- ``logp_mode``: which parameters form the action's likelihood: "chosen" (Fan et al.: only the
  chosen action's parameters; the others never reach the env) or "all" (DI-engine's and
  RLlib's Tuple distribution).
- ``bound``: how parameters stay in [-1, 1]: "tanh_mean" (DI-engine: a tanh-bounded mean,
  unbounded samples clipped on the way to the env) or "squashed" (tanh of a Gaussian sample,
  with its log-det term).
- ``sigma``: the parameters' standard deviation: "fixed", "state_independent" (learned, one per
  parameter) or "state_dependent" (a head output).
- ``initial_sigma``: the fixed sigma, or the learned one's start (0.1..1).
- ``param_layout``: ``[P_1, ..., P_K]`` parameters per action, for a flat
  ``Tuple(Discrete(K), Box(P))`` action space (Moving/Sliding: ``[1, 1, 0]``); None for the
  tuple forms, which say it themselves.
"""

from __future__ import annotations

import gymnasium as gym
from ray.rllib.utils.from_config import NotProvided

from rllib_ext.core.parameterised.action_layout import ActionLayout, layout_from_space
from rllib_ext.core.parameterised.torch.hybrid_distribution import BOUNDS, LOGP_MODES
from rllib_ext.core.parameterised.torch.hybrid_policy import (
    BOUND_KEY,
    INITIAL_SIGMA_KEY,
    LOGP_MODE_KEY,
    PARAM_LAYOUT_KEY,
    SIGMA_TYPE_KEY,
    SIGMA_TYPES,
)
from rllib_ext.core.rllib_compat import config_value_error


class HybridPolicyKnobs:
    """Mixin for an ``AlgorithmConfig`` that also has :class:`~rllib_ext.core.validation.
    KnobChecks` (see the module docstring for the knobs)."""

    def init_hybrid_knobs(self, *, sigma: str, initial_sigma: float) -> None:
        """The defaults: Fan et al.'s chosen-action likelihood, DI-engine's tanh-bounded mean,
        and the algorithm's own sigma."""
        self.logp_mode = "chosen"
        self.bound = "tanh_mean"
        self.sigma = sigma
        self.initial_sigma = initial_sigma
        self.param_layout = None

    def set_hybrid_knobs(self, **values) -> None:
        """Sets the knobs given (those not ``NotProvided``); for ``training(...)``."""
        for name, value in values.items():
            if value is not NotProvided:
                setattr(self, name, value)

    def hybrid_model_config(self) -> dict:
        """The knobs as the module's ``model_config`` keys."""
        return {LOGP_MODE_KEY: self.logp_mode, BOUND_KEY: self.bound,
                SIGMA_TYPE_KEY: self.sigma, INITIAL_SIGMA_KEY: self.initial_sigma,
                PARAM_LAYOUT_KEY: self.param_layout}

    def validate_hybrid_knobs(self) -> None:
        self.check_choice("logp_mode", LOGP_MODES)
        self.check_choice("bound", BOUNDS)
        self.check_choice("sigma", SIGMA_TYPES)
        self.check_number("initial_sigma", low=0, low_open=True, example=0.3)
        self.check_param_layout(example=(1, 1, 0))

    def hybrid_layout(self, action_space: gym.Space, algorithm: str) -> ActionLayout | None:
        """The space's layout; a ``ValueError`` with the fix if it is not a parameterised space
        with at least one continuous parameter."""
        try:
            layout = layout_from_space(action_space, self.param_layout)
        except ValueError as e:
            config_value_error(self, f"{algorithm} needs a parameterised action space here. {e}")
            return None
        if layout.total_params == 0:
            config_value_error(self, f"{action_space} has no continuous parameters; use a "
                                     "Discrete action space (and RLlib's PPO or DQN).")
        return layout
