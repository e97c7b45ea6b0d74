"""H-PPO's torch learner: RLlib's PPO learner (GAE connector, value loss, KL coefficient, LR and
entropy schedules, several learners) with the hybrid policy loss.

Fan et al. 2019 (H-PPO) split the policy ratio of a parameterised action ``(k, x)`` in two,
both weighted by the same advantage A (GAE on the driver, normalised per minibatch by RLlib):

    r_k = pi_new(k | s) / pi_old(k | s)                    (the discrete choice)
    r_x = pi_new(x_D | s) / pi_old(x_D | s)                (its parameters, D = the slots in the
                                                            likelihood: the chosen action's or all)
    L_surrogate = E[min(r_k A, clip(r_k, 1 - eps, 1 + eps) A)]
                + E[min(r_x A, clip(r_x, 1 - eps, 1 + eps) A)]                     ("separate")

so a large move of the parameters is clipped even when the discrete choice barely changed, and
vice versa. ``surrogate="joint"`` is PPO's single ratio r = r_k r_x (RLlib's PPO on the same
distribution). Entropy bonus: ``entropy_coeff_discrete * H(k) + entropy_coeff_continuous *
E_k[H(x | k)]``. Value loss: RLlib's, ``vf_loss_coeff * clip((V - V_target)^2, 0,
vf_clip_param)``.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.ppo import (
    LEARNER_RESULTS_KL_KEY,
    LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY,
    LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY,
)
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override
from ray.rllib.utils.torch_utils import explained_variance

from rllib_ext.algorithms.hppo.hppo_keys import (
    CONTINUOUS_CLIP_FRACTION_KEY,
    CONTINUOUS_ENTROPY_KEY,
    CONTINUOUS_POLICY_LOSS_KEY,
    DISCRETE_CLIP_FRACTION_KEY,
    DISCRETE_ENTROPY_KEY,
    DISCRETE_POLICY_LOSS_KEY,
    PARAM_STD_KEY,
)
from rllib_ext.core.non_finite import SkipNonFiniteGradients


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor,
                      clip_param: float) -> torch.Tensor:
    """min(r A, clip(r, 1 - eps, 1 + eps) A) per sample (PPO's Eq. 7)."""
    return torch.min(ratio * advantages,
                     torch.clamp(ratio, 1.0 - clip_param, 1.0 + clip_param) * advantages)


def hybrid_surrogates(curr, prev, actions, advantages: torch.Tensor, *, clip_param: float,
                      surrogate: str, old_logp: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample surrogate to maximise and its parts (see the module docstring).

    ``curr``/``prev``: the hybrid distributions of the current and the behaviour policy.
    ``old_logp`` (the env runner's recorded log-likelihood) is the joint ratio's denominator
    if given; the separate ratios take theirs from ``prev`` (recomputed from the behaviour
    policy's recorded distribution inputs; the same numbers, split). Behaviour log-probs are
    data: computed without gradient.
    """
    logp_k, logp_x = curr.logp_parts(actions)
    with torch.no_grad():
        old_k, old_x = prev.logp_parts(actions)
    if surrogate == "joint":
        old = old_k + old_x if old_logp is None else old_logp
        ratio = torch.exp(logp_k + logp_x - old)
        return clipped_surrogate(ratio, advantages, clip_param), {}
    ratio_k, ratio_x = torch.exp(logp_k - old_k), torch.exp(logp_x - old_x)
    s_k = clipped_surrogate(ratio_k, advantages, clip_param)
    s_x = clipped_surrogate(ratio_x, advantages, clip_param)
    with torch.no_grad():
        parts = {"s_k": s_k, "s_x": s_x,
                 "clipped_k": ((ratio_k - 1.0).abs() > clip_param).float(),
                 "clipped_x": ((ratio_x - 1.0).abs() > clip_param).float()}
    return s_k + s_x, parts


class HPPOTorchLearner(SkipNonFiniteGradients, PPOTorchLearner):
    """RLlib's PPO torch learner with H-PPO's policy loss (module docstring). Everything else
    (GAE, value targets, advantage normalisation, KL coefficient, schedules, several learners)
    is RLlib's PPO learner unchanged, except that a step with a non-finite gradient is skipped
    and counted (one fused check, as every learner of the plugin) instead of taken with zeroed
    gradients."""

    @override(PPOTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        mask = batch.get(Columns.LOSS_MASK)
        if mask is not None and module.is_stateful():
            # Zero-padded sequences (a recurrent module): average the real steps only.
            def mean(t):
                return t[mask].mean()
        else:
            # Without a recurrent module RLlib's mask is all true: a plain mean is the same
            # number without the boolean indexing (a tenth of the loss's time) and without
            # reading the mask back from the device.
            mean = torch.mean

        curr = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        prev = module.get_exploration_action_dist_cls().from_logits(
            batch[Columns.ACTION_DIST_INPUTS])
        advantages = batch[Postprocessing.ADVANTAGES]
        surrogate, parts = hybrid_surrogates(
            curr, prev, batch[Columns.ACTIONS], advantages, clip_param=config.clip_param,
            surrogate=config.surrogate, old_logp=batch[Columns.ACTION_LOGP])

        h_k, h_x = curr.entropy_parts()
        entropy_bonus = (config.entropy_coeff_discrete * h_k
                         + config.entropy_coeff_continuous * h_x)

        values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        vf_loss = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
        vf_loss_clipped = torch.clamp(vf_loss, 0, config.vf_clip_param)

        # Minimise: -surrogate + c_v * value loss - entropy bonus (+ the adaptive KL term).
        total = mean(-surrogate + config.vf_loss_coeff * vf_loss_clipped - entropy_bonus)
        if config.use_kl_loss:
            mean_kl = mean(prev.kl(curr))
            total = total + self.curr_kl_coeffs_per_module[module_id] * mean_kl
        else:
            mean_kl = torch.zeros((), device=total.device)

        stats = {
            POLICY_LOSS_KEY: -mean(surrogate),
            VF_LOSS_KEY: mean(vf_loss_clipped),
            LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY: mean(vf_loss),
            LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY: explained_variance(
                batch[Postprocessing.VALUE_TARGETS], values),
            ENTROPY_KEY: mean(h_k + h_x),
            DISCRETE_ENTROPY_KEY: mean(h_k),
            CONTINUOUS_ENTROPY_KEY: mean(h_x),
            LEARNER_RESULTS_KL_KEY: mean_kl,
            PARAM_STD_KEY: curr.normal.scale.mean(),
        }
        if parts:
            stats.update({DISCRETE_POLICY_LOSS_KEY: -mean(parts["s_k"]),
                          CONTINUOUS_POLICY_LOSS_KEY: -mean(parts["s_x"]),
                          DISCRETE_CLIP_FRACTION_KEY: mean(parts["clipped_k"]),
                          CONTINUOUS_CLIP_FRACTION_KEY: mean(parts["clipped_x"])})
        self.metrics.log_dict({k: v.detach() if torch.is_tensor(v) else v
                               for k, v in stats.items()}, key=module_id, window=1)
        return total
