"""Torch REINFORCE loss, with optional importance-weighted reuse and the optimal baseline."""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.non_finite import SkipNonFiniteGradients
from rllib_ext.algorithms.pg.importance_sampling import (
    importance_coefficients,
    importance_weights,
    weight_statistics,
)
from rllib_ext.algorithms.pg.pg_learner import (
    ADVANTAGE_SCALE,
    ADVANTAGES,
    BASELINE,
    DATA_AGE,
    ENTROPY_KEY,
    FRESH_RATIO_MAX_DEVIATION_KEY,
    GRADIENT_NORM_KEY,
    IS_EFFECTIVE_SAMPLE_SIZE_KEY,
    IS_WEIGHT_MAX_KEY,
    IS_WEIGHT_MEAN_KEY,
    MEAN_ADVANTAGE_KEY,
    MEAN_BASELINE_KEY,
    MEAN_RETURN_TO_GO_KEY,
    OPTIMAL_BASELINE_STD_KEY,
    POLICY_LOSS_KEY,
    RETURNS_TO_GO,
    TRAJECTORY_ID,
    PGLearner,
)
from rllib_ext.algorithms.pg.torch.score_gradients import (
    optimal_baseline,
    per_trajectory_score_sums,
)


class PGTorchLearner(PGLearner, SkipNonFiniteGradients):
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
        metrics = {}

        off_policy = config.off_policy_reuse > 0
        if off_policy or config.baseline == "optimal":
            trajectory_index, lengths = self._trajectory_segments(batch)
        if off_policy:
            # The weights are functions of theta, but grad w = w * grad log pi_theta, so
            # detaching them and differentiating log_pi below gives the exact IS gradient.
            coefficients, carrier = self._importance_weighted(
                config, batch, log_pi.detach(), lengths, metrics
            )
        else:
            coefficients, carrier = advantages, torch.ones_like(advantages)

        # Policy-gradient theorem with reward-to-go and a baseline (importance weighted when
        # reusing old data, see importance_sampling.py):
        #   grad J(theta) ~= 1/N sum_t grad log pi_theta(a_t|s_t) * c_t,  c_t = w_t (G_t - b_t).
        # Minimising the surrogate -mean(log_pi * c) performs gradient *ascent* on J, hence the
        # sign flip. The mean runs over every time step of the batch.
        policy_loss = -torch.mean(log_pi * coefficients)
        total_loss = policy_loss

        if config.baseline == "optimal":
            correction, b = self._optimal_baseline_correction(
                module, batch, coefficients, carrier, trajectory_index, len(lengths)
            )
            # The per-parameter baseline changes the gradient of parameter k by
            # +b_k/N sum_i g_ik (the surrogate above has the sign-flipped -1/N sum_i h_ik). A
            # term sum_k correction_k * theta_k, with the correction detached, has exactly that
            # gradient, and being part of the loss it is averaged across learners like the rest.
            total_loss = total_loss + sum((c * p).sum() for p, c in correction)
            metrics[MEAN_BASELINE_KEY] = b.mean()
            metrics[OPTIMAL_BASELINE_STD_KEY] = b.std()
        else:
            metrics[MEAN_BASELINE_KEY] = batch[BASELINE].mean()

        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: policy_loss.detach(),
                MEAN_ADVANTAGE_KEY: advantages.mean(),
                MEAN_RETURN_TO_GO_KEY: batch[RETURNS_TO_GO].mean(),
                # Reported only; REINFORCE has no entropy bonus.
                ENTROPY_KEY: dist.entropy().mean().detach(),
                **metrics,
            },
            key=module_id,
            window=1,
        )
        return total_loss

    @staticmethod
    def _trajectory_segments(batch) -> tuple[torch.Tensor, list[int]]:
        """(index of each step's trajectory in 0..E-1, steps per trajectory) from TRAJECTORY_ID.

        RLlib's learner connectors keep each episode's steps together and in time order; an id
        that shows up in two separate runs means that assumption broke, and products of ratios
        over such a "trajectory" would be wrong.
        """
        ids = batch[TRAJECTORY_ID].reshape(-1)
        _, index, counts = torch.unique_consecutive(ids, return_inverse=True, return_counts=True)
        if len(counts) != len(torch.unique(ids)):
            raise ValueError(
                f"The train batch's {TRAJECTORY_ID!r} column is not contiguous per episode; PG's "
                "importance products and optimal baseline need each episode's steps in one run."
            )
        return index, counts.tolist()

    def _importance_weighted(self, config, batch, log_pi, lengths, metrics):
        """Per-step score coefficients c_t and baseline carriers w_t for reused data."""
        behaviour_logp = batch[Columns.ACTION_LOGP]
        log_ratios = (log_pi - behaviour_logp).double().cpu().numpy()
        # Fresh steps were sampled with exactly the current weights (PG syncs the env runners
        # after every update), so their ratio is 1. The recorded log-probs can still differ by
        # float32 rounding, as the runner evaluates another batch shape: the deviation is
        # reported (a large one means the recorded behaviour log-probs are wrong) and the
        # ratio set to exactly 1.
        fresh = (batch[DATA_AGE] == 0).cpu().numpy()
        if fresh.any():
            metrics[FRESH_RATIO_MAX_DEVIATION_KEY] = float(
                np.abs(np.expm1(log_ratios[fresh])).max()
            )
        log_ratios[fresh] = 0.0
        mode = config.importance_sampling
        weights = importance_weights(
            log_ratios,
            lengths,
            mode,
            clip=config.is_clip,
            self_normalize=config.is_self_normalize,
        )
        # Per-decision weights enter through the rewards; rewards and the baseline must be in
        # the advantages' units (the driver may have divided by the batch std).
        scale = batch[ADVANTAGE_SCALE].double().cpu().numpy()
        advantages = batch[ADVANTAGES].double().cpu().numpy()
        coefficients = importance_coefficients(
            weights,
            lengths,
            mode,
            advantages=advantages,
            rewards=batch[Columns.REWARDS].double().cpu().numpy() / scale,
            baselines=batch[RETURNS_TO_GO].double().cpu().numpy() / scale - advantages,
            gamma=config.gamma,
        )
        stats = weight_statistics(weights)
        metrics[IS_WEIGHT_MEAN_KEY] = stats["mean"]
        metrics[IS_WEIGHT_MAX_KEY] = stats["max"]
        metrics[IS_EFFECTIVE_SAMPLE_SIZE_KEY] = stats["ess"]
        as_tensor = lambda x: torch.as_tensor(x, dtype=log_pi.dtype, device=log_pi.device)  # noqa: E731
        return as_tensor(coefficients), as_tensor(weights)

    @staticmethod
    def _optimal_baseline_correction(module, batch, coefficients, carrier, index, num):
        """([(parameter, gradient correction)], flat vector of all b_k); see score_gradients."""
        sums = per_trajectory_score_sums(
            module,
            batch[Columns.OBS],
            batch[Columns.ACTIONS],
            index,
            num,
            {"g": carrier.detach(), "h": coefficients.detach()},
        )
        n = len(coefficients)
        correction, flat_b = [], []
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            g, h = sums["g"][name], sums["h"][name]
            b = optimal_baseline(g, h)
            correction.append((p, b * g.sum(0) / n))
            flat_b.append(b.reshape(-1))
        return correction, torch.cat(flat_b)

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
