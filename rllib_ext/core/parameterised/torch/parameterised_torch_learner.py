"""Torch learner base of the parameterised-action algorithms: the action-gradient hook, one
Adam optimizer per network, the reference's sequential critic-then-actor gradient step and the
soft target updates."""

from __future__ import annotations

from collections.abc import Callable

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_ext.core.chunked_learner import ChunkedUpdateTorchLearner
from rllib_ext.core.gradient_step import GradientStepLearner
from rllib_ext.core.parameterised.parameterised_learner import EpsilonScheduleLearner
from rllib_ext.core.rllib_compat import compute_off_policyness
from rllib_ext.core.target_networks import polyak_update
from rllib_ext.hooks import ActionGradientHook

#: One stage of a gradient step: (optimizer name, loss function). The function maps
#: ``(module, batch, config)`` to ``(loss, {metric: value})`` (the metrics include the loss under
#: its own key); the loss must reach only the weights of that optimizer.
Stage = tuple[str, Callable[..., tuple[torch.Tensor, dict]]]


class ParameterisedActionTorchLearner(EpsilonScheduleLearner, ChunkedUpdateTorchLearner,
                                      GradientStepLearner):
    """What P-DQN's and PA-DDPG's torch learners share. Subclasses define:

    - :meth:`optimized_networks`: ``[(optimizer name, network, learning rate)]``;
    - :meth:`target_networks`: ``[(online, target, tau)]``, Polyak-averaged after every step;
    - :meth:`update_stages`: the ordered :data:`Stage` list of one gradient step, critic first.

    **One gradient step, as the reference agents take it** (cycraig/MP-DQN ``pdqn.py`` and
    ``paddpg.py``, ``_optimize_td_loss``): for each stage in order, compute its loss on the
    networks *as the previous stages left them*, backpropagate, clip that network's gradient
    norm and step its optimizer; then Polyak-update every target network. For P-DQN and
    PA-DDPG this means the critic (Q-network) steps first and the actor's loss takes dQ/dx
    from the *just-updated* critic on the same batch. Computing both losses on the pre-step
    critic and taking one backward (RLlib's default) learns measurably worse on Platform.

    RLlib methods overridden, and why:

    - ``TorchLearner._uncompiled_update`` (one batch): RLlib runs ``forward_train`` →
      ``compute_losses`` → ``compute_gradients`` (one backward over the summed losses) →
      ``postprocess_gradients`` → ``apply_gradients``, which cannot express a loss computed
      after another network's step. Here each stage is one
      :meth:`~rllib_ext.core.gradient_step.GradientStepLearner.gradient_step`: its own
      backward, averaging over learners (one ``all_reduce``; the losses use the unwrapped
      networks, so RLlib's DDP wrapper would not sync them), RLlib's gradient-norm clip per
      optimizer and ``apply_gradients`` (a step with non-finite gradients is skipped and
      counted).
    - ``TorchLearner._update`` (one RLlib minibatch): cuts the minibatch into consecutive
      ``train_batch_size_per_learner`` batches, one gradient step each
      (:class:`~rllib_ext.core.chunked_learner.ChunkedUpdateTorchLearner`).
    - ``Learner.compute_loss_for_module``: required by RLlib, but a summed loss is exactly what
      this learner does not take; it raises and names :meth:`update_stages`.
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

    def update_stages(self) -> list[Stage]:
        raise NotImplementedError

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self.module[module_id].unwrapped()
        for name, network, lr in self.optimized_networks(module, config):
            # Frozen tensors (the passthrough layer) are not optimised.
            trainable = [p for p in network.parameters() if p.requires_grad]
            self.register_optimizer(
                module_id=module_id, optimizer_name=name,
                optimizer=torch.optim.Adam(trainable, betas=tuple(config.adam_betas)),
                params=trainable, lr_or_lr_schedule=lr,
            )

    @override(TorchLearner)
    def _uncompiled_update(self, batch, **kwargs):
        """One sequential gradient step on ``batch`` (see the class docstring)."""
        compute_off_policyness(self, batch)
        total_loss = {}
        for module_id, module_batch in batch.items():
            module = self.module[module_id].unwrapped()
            config = self.config.get_config_for_module(module_id)
            total = 0.0
            for optimizer_name, loss_fn in self.update_stages():
                loss, stats = loss_fn(module, module_batch, config)
                self.gradient_step(module_id, loss, [optimizer_name], config,
                                   log_global_norm=True)
                self.log_step_stats(module_id, stats)
                total = total + loss.detach()
            # Soft target updates after every stage has stepped (the reference's order).
            for online, target, tau in self.target_networks(module, config):
                polyak_update(online, target, tau)
            total_loss[module_id] = total
        return {}, total_loss, {}

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            f"{type(self).__name__} takes one backward per network in order (critic, then "
            "actor on the updated critic), not one summed loss; its losses are the functions "
            "in update_stages().")


def fraction_out_of_bounds(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Share of ``values`` outside [low, high] (a metric; no gradient)."""
    values = values.detach()
    return ((values < low) | (values > high)).float().mean()
