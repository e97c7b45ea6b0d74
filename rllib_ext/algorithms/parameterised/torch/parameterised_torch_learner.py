"""Torch learner base of the parameterised-action algorithms: owns the action-gradient hook."""

from __future__ import annotations

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.parameterised.parameterised_learner import EpsilonScheduleLearner
from rllib_ext.hooks import ActionGradientHook


class ParameterisedActionTorchLearner(EpsilonScheduleLearner, TorchLearner):
    """Builds ``self.action_gradient_hook`` from ``config.action_gradient_strategy``; the
    subclass's loss applies it to dQ/da where it forms that gradient."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        self.action_gradient_hook = self.make_action_gradient_hook()

    def make_action_gradient_hook(self) -> ActionGradientHook:
        """Override to plug in a custom action-gradient rule."""
        return ActionGradientHook(self.config.action_gradient_strategy)


def fraction_out_of_bounds(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Share of ``values`` outside [low, high] (a metric; no gradient)."""
    values = values.detach()
    return ((values < low) | (values > high)).float().mean()
