"""Torch learner base of the parameterised-action algorithms: the action-gradient hook, one
Adam optimizer per network, the loss plumbing and the soft target updates."""

from __future__ import annotations

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.parameterised.parameterised_learner import EpsilonScheduleLearner
from rllib_ext.algorithms.parameterised.torch.networks import polyak_update
from rllib_ext.hooks import ActionGradientHook


class ParameterisedActionTorchLearner(EpsilonScheduleLearner, TorchLearner):
    """What P-DQN's and PA-DDPG's torch learners share. Subclasses define:

    - :meth:`optimized_networks`: ``[(optimizer name, network, learning rate)]``;
    - :meth:`target_networks`: ``[(online, target, tau)]``, Polyak-averaged after every step;
    - :meth:`compute_named_losses`: ``({loss name: loss}, {metric: value})``; the losses are
      summed into one backward pass, so each must reach only its own network's weights.
    """

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        self.action_gradient_hook = self.make_action_gradient_hook()

    def make_action_gradient_hook(self) -> ActionGradientHook:
        """Override to plug in a custom action-gradient rule (applied to dQ/da)."""
        return ActionGradientHook(self.config.action_gradient_strategy)

    def optimized_networks(self, module, config) -> list[tuple[str, torch.nn.Module, float]]:
        raise NotImplementedError

    def target_networks(self, module, config) -> list[tuple[torch.nn.Module, torch.nn.Module,
                                                             float]]:
        raise NotImplementedError

    def compute_named_losses(self, module, batch, config) -> tuple[dict, dict]:
        raise NotImplementedError

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self.module[module_id].unwrapped()
        for name, network, lr in self.optimized_networks(module, config):
            # Frozen tensors (the passthrough layer) are not optimised.
            trainable = [p for p in network.parameters() if p.requires_grad]
            self.register_optimizer(
                module_id=module_id, optimizer_name=name,
                optimizer=torch.optim.Adam(trainable), params=trainable, lr_or_lr_schedule=lr,
            )

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        losses, stats = self.compute_named_losses(
            self.module[module_id].unwrapped(), batch, config)
        self.metrics.log_dict(
            {**{name: loss.detach() for name, loss in losses.items()}, **stats},
            key=module_id, window=1,
        )
        return sum(losses.values())

    @override(TorchLearner)
    def apply_gradients(self, gradients_dict) -> None:
        super().apply_gradients(gradients_dict)
        for module_id in self.module.keys():
            config = self.config.get_config_for_module(module_id)
            for online, target, tau in self.target_networks(
                    self.module[module_id].unwrapped(), config):
                polyak_update(online, target, tau)


def fraction_out_of_bounds(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Share of ``values`` outside [low, high] (a metric; no gradient)."""
    values = values.detach()
    return ((values < low) | (values > high)).float().mean()
