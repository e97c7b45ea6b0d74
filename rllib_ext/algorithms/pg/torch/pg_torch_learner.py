"""Torch REINFORCE loss, with optional importance-weighted reuse, the optimal baseline and the
learned value baseline's regression."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import DEFAULT_MODULE_ID
from ray.rllib.utils.annotations import override

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
    VALUE_EXPLAINED_VARIANCE_KEY,
    VALUE_LOSS_KEY,
    VALUE_TARGETS,
    PGLearner,
)
from rllib_ext.algorithms.pg.torch.score_gradients import (
    optimal_baseline,
    per_trajectory_score_sums,
)
from rllib_ext.core.gradient_step import GradientStepLearner
from rllib_ext.core.rllib_compat import learner_device

#: Name of the value network's optimizer (``baseline="value"``); the policy keeps RLlib's
#: default optimizer.
VALUE_OPTIMIZER = "value"


class PGTorchLearner(PGLearner, GradientStepLearner):
    """REINFORCE's policy step through RLlib's standard update (one gradient step per batch).

    With ``baseline="value"`` the module also holds a value network with its own optimizer
    (``value_lr``), regressed on the batch's normalised reward-to-go (VALUE_TARGETS) for
    ``value_gradient_steps`` full-batch steps: the first in the policy's update (summed loss,
    disjoint parameters), the others after it, their gradients averaged over the learners. The
    advantages of that batch were computed on the driver from the value network *before* these
    steps (:meth:`value_predictions`).
    """

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if config.baseline != "value":
            return super().configure_optimizers_for_module(module_id, config)
        module = self.module[module_id].unwrapped()
        value = [*module.value_encoder.parameters(), *module.vf.parameters()]
        # Everything else is the policy's: encoder, pi head and, for a parameterised action
        # space, the learned log-std of its parameters.
        value_ids = {id(p) for p in value}
        policy = [p for p in module.parameters() if id(p) not in value_ids]
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.Adam(policy),
                                params=policy, lr_or_lr_schedule=config.lr)
        self.register_optimizer(module_id=module_id, optimizer_name=VALUE_OPTIMIZER,
                                optimizer=torch.optim.Adam(value), params=value,
                                lr_or_lr_schedule=config.value_lr)

    @torch.no_grad()
    def value_predictions(self, obs: np.ndarray, module_id=DEFAULT_MODULE_ID) -> np.ndarray:
        """The value network's outputs (normalised units) at ``obs``, for the driver's
        advantages."""
        module = self.module[module_id].unwrapped()
        values = module.compute_values(
            {Columns.OBS: torch.as_tensor(obs, dtype=torch.float32, device=learner_device(self))})
        return values.cpu().numpy()

    @override(TorchLearner)
    def _update(self, batch):
        out = super()._update(batch)
        for module_id, module_batch in batch.items():
            if VALUE_TARGETS in module_batch:
                self._fit_value_network(module_id, module_batch)
        return out

    @staticmethod
    def _value_loss(module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (V_phi(s_t) - y_t)^2, explained variance 1 - Var(y - V) / Var(y)), y_t the
        normalised (bootstrapped) reward-to-go: the baseline regression of the policy-gradient
        notes."""
        targets = batch[VALUE_TARGETS]
        values = module.compute_values(batch)
        residual = (targets - values).detach()
        explained = 1.0 - residual.var() / targets.var().clamp_min(1e-8)
        return F.mse_loss(values, targets), explained

    def _fit_value_network(self, module_id, batch) -> None:
        """The value network's remaining ``value_gradient_steps - 1`` full-batch steps."""
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        for _ in range(config.value_gradient_steps - 1):
            loss, _ = self._value_loss(module, batch)
            self.gradient_step(module_id, loss, [VALUE_OPTIMIZER], config)
        with torch.no_grad():
            loss, _ = self._value_loss(module, batch)
        self.metrics.log_value((module_id, VALUE_LOSS_KEY), loss, window=1)
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
        # A recurrent policy trains on [B, T] sequences zero-padded to max_seq_len: the means
        # run over the real steps only (RLlib's loss mask), so padding neither adds terms nor
        # dilutes the average.
        mask = batch.get(Columns.LOSS_MASK)
        mean = torch.mean if mask is None else (lambda t: t[mask].mean())  # noqa: E731

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
        # sign flip. The mean runs over every (real) time step of the batch.
        policy_loss = -mean(log_pi * coefficients)
        total_loss = policy_loss
        if VALUE_TARGETS in batch:
            # The value network's first regression step rides along (its own optimizer and
            # parameters): with several learners DDP then averages every parameter's gradient
            # in this backward; a bucket holding parameters without one would never be reduced.
            value_loss, metrics[VALUE_EXPLAINED_VARIANCE_KEY] = self._value_loss(module, batch)
            total_loss = total_loss + value_loss

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
            metrics[MEAN_BASELINE_KEY] = mean(batch[BASELINE])

        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: policy_loss.detach(),
                MEAN_ADVANTAGE_KEY: mean(advantages),
                MEAN_RETURN_TO_GO_KEY: mean(batch[RETURNS_TO_GO]),
                # Reported only; REINFORCE has no entropy bonus.
                ENTROPY_KEY: mean(dist.entropy()).detach(),
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
