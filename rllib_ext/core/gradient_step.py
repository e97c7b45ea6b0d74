"""One optimizer step from a loss, the same way in every torch learner of rllib_ext.

RLlib's ``TorchLearner`` computes all gradients of one summed loss and applies them to every
optimizer at once (``compute_gradients`` / ``apply_gradients``). The learners here need finer
steps: the parameterised-action algorithms and ACE (by default) step the critic before the
actor's loss is computed on it, ACE skips the policy on critic-only steps, PG fits its value
network several times per batch. :meth:`GradientStepLearner.gradient_step` is that one step,
in one order for all of them:

1. zero every gradient of the learner (so no other network is stepped again),
2. one backward of the loss (for several optimizers at once, the sum of their losses),
3. average the gradients of the stepped optimizers over all learners (one ``all_reduce``),
4. let the caller inspect the averaged gradients (ACE measures gradient dormancy here),
5. clip each optimizer's gradients with RLlib's clip function (``grad_clip``,
   ``grad_clip_by``), logging the global norm when asked,
6. apply them with RLlib's ``apply_gradients`` (its learning-rate schedulers and gradient
   scalers included); a non-finite gradient skips the whole step and is counted
   (:class:`~rllib_ext.core.non_finite.SkipNonFiniteGradients`; RLlib would step with
   zeroed gradients). Only the named optimizers' parameters carry gradients then, so the
   other optimizers' steps are no-ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from ray.rllib.utils.typing import ModuleID

from rllib_ext.core.chunked_learner import average_over_learners
from rllib_ext.core.non_finite import SkipNonFiniteGradients
from rllib_ext.core.rllib_compat import clip_function, learner_optimizers, learner_params


class GradientStepLearner(SkipNonFiniteGradients):
    """Mixin for torch learners: :meth:`gradient_step` (see the module docstring)."""

    def log_step_stats(self, module_id, stats: dict) -> None:
        """Logs one gradient step's stats of ``module_id`` (window 1: the latest value is
        reported). :class:`~rllib_ext.core.chunked_learner.ChunkedUpdateTorchLearner` logs
        them once per update call instead."""
        self.metrics.log_dict(stats, key=module_id, window=1)

    def gradient_step(
        self,
        module_id: ModuleID,
        loss: torch.Tensor,
        optimizer_names: Sequence[str],
        config,
        *,
        inspect: Callable[[dict], None] | None = None,
        log_global_norm: bool = False,
    ) -> None:
        """Steps the optimizers ``optimizer_names`` of ``module_id`` on ``loss``'s gradients.

        Args:
            module_id: The module whose optimizers to step.
            loss: A scalar; for several optimizers, the sum of their losses (each reaching
                only its own optimizer's parameters gives each exactly its own gradient).
            optimizer_names: The optimizers to step (others keep their state untouched).
            config: The module's algorithm config (``grad_clip``, ``grad_clip_by``).
            inspect: Called with the averaged gradients ``{param id: grad}`` before clipping.
            log_global_norm: Log each optimizer's pre-clip global norm as
                ``gradients_<name>_global_norm`` (when ``grad_clip`` is set).
        """
        for optim in learner_optimizers(self):
            optim.zero_grad(set_to_none=True)
        loss.backward()
        params = learner_params(self)
        all_grads = {pid: p.grad for pid, p in params.items() if p.grad is not None}
        optimizers = [(name, self.get_optimizer(module_id, name)) for name in optimizer_names]
        grads = {}
        for _, optim in optimizers:
            grads.update(self.filter_param_dict_for_optimizer(all_grads, optim))
        # Averaged before anything reads them, so every learner takes the same step.
        average_over_learners(grads)
        if inspect is not None:
            inspect(grads)
        if config.grad_clip:
            for name, optim in optimizers:
                norm = clip_function(self)(
                    self.filter_param_dict_for_optimizer(grads, optim),
                    grad_clip=config.grad_clip, grad_clip_by=config.grad_clip_by)
                if log_global_norm and norm is not None:
                    self.log_step_stats(module_id, {f"gradients_{name}_global_norm": norm})
        for pid, param in params.items():
            if pid not in grads:
                param.grad = None  # not stepped: the other optimizers' steps are no-ops
        self.apply_gradients(grads)
