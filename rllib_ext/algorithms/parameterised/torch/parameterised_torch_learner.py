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
    def _update(self, batch):
        """One gradient step per ``train_batch_size_per_learner`` rows, in order.

        The algorithm hands over all the rows one ``training_step`` trains on (``num_updates``
        batches) as a single RLlib minibatch, so RLlib converts, slices and logs that data once
        per ``training_step`` rather than once per gradient step. Here the rows are cut into
        consecutive batches (tensor views, no copy) and each gets its own forward, backward,
        optimizer step and Polyak update — the same gradient steps as ``num_updates``
        minibatches would give. A last, shorter chunk (rows not a multiple of the batch size)
        is trained on as it is.
        """
        size = self.config.train_batch_size_per_learner
        rows = max(len(module_batch) for module_batch in batch.values())
        for start in range(0, rows, size):
            out = super()._update({
                module_id: {key: column[start:start + size]
                            for key, column in module_batch.items()}
                for module_id, module_batch in batch.items()
            })
        return out

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
