"""Framework-agnostic part of the PG learner: batch and metric keys, shared checks."""

from __future__ import annotations

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

# Batch columns written by ``advantages.add_advantages_to_episodes`` on the driver.
ADVANTAGES = Columns.ADVANTAGES
RETURNS_TO_GO = Columns.RETURNS_TO_GO
BASELINE = "baseline"
# Divisor of the advantage normalisation (1.0 without it): G_t / scale - A_t is the baseline in
# advantage units, which per-decision importance sampling needs (see importance_sampling.py).
ADVANTAGE_SCALE = "advantage_scale"
# Index of the step's episode within the update's episode list: episode boundaries for the
# per-trajectory quantities (importance products, optimal baseline).
TRAJECTORY_ID = "trajectory_id"
# Training iterations since the step was sampled (0: fresh, from the current policy).
DATA_AGE = "data_age"
# baseline="value": the value network's regression target, the bootstrapped reward-to-go in
# the batch's normalised units (advantages.normalization_stats).
VALUE_TARGETS = Columns.VALUE_TARGETS

# Metric keys (reported per module under ``learners/<module_id>/``).
POLICY_LOSS_KEY = "policy_loss"
MEAN_ADVANTAGE_KEY = "mean_advantage"
MEAN_RETURN_TO_GO_KEY = "mean_return_to_go"
MEAN_BASELINE_KEY = "mean_baseline"
ENTROPY_KEY = "policy_entropy"
GRADIENT_NORM_KEY = "gradient_norm"
# Importance sampling (off_policy_reuse > 0): statistics of the per-step weights w_t that
# multiply the score terms, over all steps of the update (fresh and reused).
IS_WEIGHT_MEAN_KEY = "is_weight_mean"
IS_WEIGHT_MAX_KEY = "is_weight_max"
# Kish's effective sample size (sum w)^2 / sum w^2, in steps; equals the batch size when all
# weights are equal.
IS_EFFECTIVE_SAMPLE_SIZE_KEY = "is_effective_sample_size"
# max |pi_theta(a|s) / mu(a|s) - 1| over the fresh (DATA_AGE == 0) steps, before the learner
# sets their ratio to exactly 1: float32 rounding (~1e-7) when the behaviour log-probs recorded
# by the env runners match the learner's policy, as they must; larger means they do not.
FRESH_RATIO_MAX_DEVIATION_KEY = "is_fresh_ratio_max_deviation"
# Optimal baseline: mean and spread of the per-parameter b_k over the module's parameters.
OPTIMAL_BASELINE_STD_KEY = "optimal_baseline_std"
# Value baseline: the value network's MSE on its (normalised) targets after its last step of
# the iteration, and the explained variance 1 - Var(target - V) / Var(target) before them.
VALUE_LOSS_KEY = "value_loss"
VALUE_EXPLAINED_VARIANCE_KEY = "value_explained_variance"


class PGLearner(Learner):
    """Base class for REINFORCE learners. The loss lives in the framework subclass."""

    @override(Learner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError

    @staticmethod
    def check_batch(batch) -> None:
        """Fails loudly when the batch lacks the driver-side advantage columns."""
        if ADVANTAGES not in batch:
            raise ValueError(
                f"The train batch has no {ADVANTAGES!r} column (columns: {sorted(batch)}). "
                "PG computes advantages on the driver in PG.training_step before calling "
                "learner_group.update(); call rllib_ext.algorithms.pg.advantages."
                "add_advantages_to_episodes(episodes, ...) first if you drive the learner "
                "yourself."
            )
