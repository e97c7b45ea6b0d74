"""Torch REINFORCE loss."""

from __future__ import annotations

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.pg.pg_learner import (
    ADVANTAGES,
    BASELINE,
    ENTROPY_KEY,
    GRADIENT_NORM_KEY,
    MEAN_ADVANTAGE_KEY,
    MEAN_BASELINE_KEY,
    MEAN_RETURN_TO_GO_KEY,
    POLICY_LOSS_KEY,
    RETURNS_TO_GO,
    PGLearner,
)


class PGTorchLearner(PGLearner, TorchLearner):
    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        self.check_batch(batch)
        module = self.module[module_id].unwrapped()
        dist = module.get_train_action_dist_cls().from_logits(
            fwd_out[Columns.ACTION_DIST_INPUTS]
        )
        log_pi = dist.logp(batch[Columns.ACTIONS])
        # The advantage is data, computed on the driver from rewards: no gradient flows into it.
        advantages = batch[ADVANTAGES]

        # Policy-gradient theorem with reward-to-go and a baseline:
        #   grad J(theta) ~= 1/N sum_t grad log pi_theta(a_t|s_t) * (G_t - b_t).
        # Minimising the surrogate -mean(log_pi * A) performs gradient *ascent* on J, hence the
        # sign flip. The mean runs over every time step of the batch.
        policy_loss = -torch.mean(log_pi * advantages)

        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: policy_loss.detach(),
                MEAN_ADVANTAGE_KEY: advantages.mean(),
                MEAN_RETURN_TO_GO_KEY: batch[RETURNS_TO_GO].mean(),
                MEAN_BASELINE_KEY: batch[BASELINE].mean(),
                # Reported only; REINFORCE has no entropy bonus.
                ENTROPY_KEY: dist.entropy().mean().detach(),
            },
            key=module_id,
            window=1,
        )
        return policy_loss

    @override(TorchLearner)
    def postprocess_gradients_for_module(self, *, module_id, config=None, module_gradients_dict):
        grads = [g for g in module_gradients_dict.values() if g is not None]
        if grads:
            # Global L2 norm of the raw gradient, before any grad_clip RLlib applies below.
            per_tensor = torch.stack([torch.linalg.vector_norm(g) for g in grads])
            norm = torch.linalg.vector_norm(per_tensor)
            self.metrics.log_value((module_id, GRADIENT_NORM_KEY), norm, window=1)
        return super().postprocess_gradients_for_module(
            module_id=module_id, config=config, module_gradients_dict=module_gradients_dict
        )
