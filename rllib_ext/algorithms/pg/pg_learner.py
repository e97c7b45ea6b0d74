"""Framework-agnostic part of the PG learner: batch and metric keys, shared checks."""

from __future__ import annotations

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

# Batch columns written by ``advantages.add_advantages_to_episodes`` on the driver.
ADVANTAGES = Columns.ADVANTAGES
RETURNS_TO_GO = Columns.RETURNS_TO_GO
BASELINE = "baseline"

# Metric keys (reported per module under ``learners/<module_id>/``).
POLICY_LOSS_KEY = "policy_loss"
MEAN_ADVANTAGE_KEY = "mean_advantage"
MEAN_RETURN_TO_GO_KEY = "mean_return_to_go"
MEAN_BASELINE_KEY = "mean_baseline"
ENTROPY_KEY = "policy_entropy"
GRADIENT_NORM_KEY = "gradient_norm"


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
