"""ACE's torch learner: SAC with the causality-aware (per-dimension weighted) entropy, delayed
actor/alpha/target updates, gradient-dormancy measurement and soft resets.

Notation (Ji et al. 2024; reference ``model/algorithm.py::ACE_agent.update_parameters``):
``w`` = causal weights (A,), positive, summing to A (all ones before the first causal fit, which
makes every loss below SAC's); ``log pi_c(a|s) = sum_i w_i log pi_i(a_i|s)`` = the weighted,
tanh-corrected per-dimension log-likelihood, so ``-E[log pi_c] = sum_i w_i H_i`` is the
causality-aware entropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.sac.sac_learner import (
    LOGPS_KEY,
    QF_LOSS_KEY,
    QF_MEAN_KEY,
    QF_PREDS,
    QF_TWIN_LOSS_KEY,
    QF_TWIN_PREDS,
    TD_ERROR_MEAN_KEY,
)
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import POLICY_LOSS_KEY
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES, TD_ERROR_KEY
from ray.rllib.utils.typing import ModuleID, ParamDict, TensorType

from rllib_ext.algorithms.ace.ace_learner import (
    ACE_LEARNER_STATE,
    CAUSAL_WEIGHTED_LOGP_KEY,
    DORMANCY_RATIO_KEY,
    LOGP_NEXT_PER_DIM,
    LOGP_PER_DIM,
    NUM_GRADIENT_UPDATES_KEY,
    NUM_POLICY_UPDATES_KEY,
)
from rllib_ext.algorithms.ace.dormancy import gradient_dormancy, linear_layers, soft_reset_

#: Reset variants that only touch gradient-dormant neurons.
DORMANT_VARIANTS = ("dormant_reset", "causal_dormant_reset")
# Optimizers whose state a reset clears (alpha keeps its state, as the reference).
_RESET_OPTIMIZERS = ("qf", "qf_twin", "policy")
# (network, target network or None, optimizer) attribute names of SAC's module, per part.
_PARTS = {
    "policy": (("pi_encoder", "pi"), None),
    "qf": (("qf_encoder", "qf"), ("target_qf_encoder", "target_qf")),
    "qf_twin": (("qf_twin_encoder", "qf_twin"), ("target_qf_twin_encoder", "target_qf_twin")),
}


def _nets(module, names) -> torch.nn.ModuleList:
    return torch.nn.ModuleList([getattr(module, n) for n in names])


class ACETorchLearner(SACTorchLearner):
    """SAC's learner (optimizers "qf", "qf_twin", "policy", "alpha") with ACE's losses.

    Per gradient step the critics are always updated; every ``policy_update_freq``-th step
    (the 1st, 3rd, ... for 2) also updates the policy, alpha and (Polyak) the target critics.
    """

    @override(SACTorchLearner)
    def build(self) -> None:
        super().build()
        self._causal_weights: dict[ModuleID, torch.Tensor] = {}
        self._num_updates = 0
        self._num_policy_updates = 0
        self._policy_step = True
        self._dormancy_ratio = 0.0
        self._dormant_masks: dict[str, list[torch.Tensor]] = {}
        self._num_resets = 0
        self._last_reset_update = 0
        self._last_reset_factor = 1.0

    # -- causal weights ---------------------------------------------------------------------

    def causal_weights(self, module_id: ModuleID = "default_policy") -> torch.Tensor:
        """Current weights (A,) of ``module_id``; ones until the first causal fit."""
        if module_id not in self._causal_weights:
            dim = int(np.prod(self.module[module_id].unwrapped().action_space.shape))
            self._causal_weights[module_id] = torch.ones(dim, device=self._device)
        return self._causal_weights[module_id]

    def set_causal_weights(self, weights, module_id: ModuleID = "default_policy") -> None:
        """Replaces the weights used by the losses from the next gradient step on."""
        current = self.causal_weights(module_id)
        new = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=current.device)
        if new.shape != current.shape or not torch.isfinite(new).all():
            raise ValueError(f"causal weights need shape {tuple(current.shape)} and finite "
                             f"values, got {np.asarray(weights)}.")
        self._causal_weights[module_id] = new

    # -- losses -----------------------------------------------------------------------------

    @override(SACTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: ModuleID, config, batch: dict[str, Any], fwd_out: dict[str, TensorType]
    ) -> TensorType:
        self._policy_step = self._num_updates % config.policy_update_freq == 0
        # The weights are constants of the loss (no gradient into them), broadcast over B.
        w = self.causal_weights(module_id)
        log_alpha = self.curr_log_alpha[module_id]
        # alpha enters the critic and policy losses as a constant (.detach()): only the alpha
        # loss trains log_alpha.
        alpha = log_alpha.exp().detach()
        # log pi_c(a|s) = sum_i w_i log pi_i(a_i|s): the causality-weighted log-likelihood,
        # for a ~ pi(.|s) (reparameterised) and a' ~ pi(.|s') (no gradient, module side).
        logp_c = (fwd_out[LOGP_PER_DIM] * w).sum(-1)
        logp_c_next = (fwd_out[LOGP_NEXT_PER_DIM] * w).sum(-1)

        # Critic target (soft Bellman backup with the causality-aware entropy):
        #   y = r + gamma^n (1 - done) [min_j Q'_j(s', a') - alpha log pi_c(a'|s')].
        # Detached: the target is a regression label, no gradient into the target nets.
        q_next = fwd_out["q_target_next"] - alpha * logp_c_next
        not_done = 1.0 - batch[Columns.TERMINATEDS].float()
        y = (batch[Columns.REWARDS] + config.gamma ** batch["n_step"] * not_done * q_next).detach()

        # Critic losses: Huber(Q_j(s, a), y) weighted by the replay's importance weights, as
        # RLlib's SAC (the reference uses an unweighted MSE).
        huber = torch.nn.HuberLoss(reduction="none", delta=1.0)
        q = fwd_out[QF_PREDS]
        critic_loss = torch.mean(batch["weights"] * huber(q, y))
        td_error = torch.abs(q - y)
        if config.twin_q:
            q_twin = fwd_out[QF_TWIN_PREDS]
            critic_twin_loss = torch.mean(batch["weights"] * huber(q_twin, y))
            # Mean TD error of both critics: the replay's priority signal, as SAC.
            td_error = 0.5 * (td_error + torch.abs(q_twin - y))

        # Policy loss: E[alpha log pi_c(a|s) - min_j Q_j(s, a)], a ~ pi reparameterised
        # (minimising it maximises Q plus the causality-aware entropy; the critics were frozen
        # in the forward pass, so only pi gets gradients).
        policy_loss = torch.mean(alpha * logp_c - fwd_out["q_curr"])

        # Alpha loss: -E[log_alpha (log pi_c(a|s) + H_target)], H_target = -A (SAC's "auto").
        # The log-prob is a constant here (.detach()): this loss trains log_alpha only, tuning
        # alpha against the *weighted* entropy (the weights sum to A, so the scale matches).
        alpha_loss = -torch.mean(log_alpha * (logp_c.detach() + self.target_entropy[module_id]))

        self.metrics.log_value((module_id, TD_ERROR_KEY), td_error, reduce="item_series")
        logged = {
            QF_LOSS_KEY: critic_loss,
            QF_MEAN_KEY: torch.mean(fwd_out["q_curr"]),
            TD_ERROR_MEAN_KEY: torch.mean(td_error),
            CAUSAL_WEIGHTED_LOGP_KEY: torch.mean(logp_c),
            LOGPS_KEY: torch.mean(fwd_out[LOGP_PER_DIM].sum(-1)),
            "alpha_value": alpha[0],
            NUM_GRADIENT_UPDATES_KEY: self._num_updates + 1,
        }
        if self._policy_step:
            logged.update({POLICY_LOSS_KEY: policy_loss, "alpha_loss": alpha_loss})
        if config.twin_q:
            logged[QF_TWIN_LOSS_KEY] = critic_twin_loss
            self._temp_losses[(module_id, QF_TWIN_LOSS_KEY)] = critic_twin_loss
        self.metrics.log_dict(logged, key=module_id, window=1)
        self._temp_losses[(module_id, QF_LOSS_KEY)] = critic_loss
        self._temp_losses[(module_id, POLICY_LOSS_KEY)] = policy_loss
        self._temp_losses[(module_id, "alpha_loss")] = alpha_loss
        total = critic_loss + (critic_twin_loss if config.twin_q else 0.0)
        return total + (policy_loss + alpha_loss if self._policy_step else 0.0)

    @override(SACTorchLearner)
    def compute_gradients(
        self, loss_per_module: dict[ModuleID, TensorType], **kwargs
    ) -> ParamDict:
        """SAC's per-optimizer backward; on critic-only steps the policy and alpha gradients
        are left unset (``None``), so Adam skips those parameters. Dormancy is measured right
        after the policy backward (the policy gradient of this batch)."""
        grads = {}
        for module_id in set(loss_per_module) - {ALL_MODULES}:
            config = self.config.get_config_for_module(module_id)
            module = self.module[module_id].unwrapped()
            for optim_name, optim in self.get_optimizers_for_module(module_id):
                optim.zero_grad(set_to_none=True)
                loss = self._temp_losses.pop((module_id, optim_name + "_loss"))
                if optim_name in ("policy", "alpha") and not self._policy_step:
                    continue
                loss.backward(retain_graph=True)
                if optim_name == "policy":
                    self._measure_dormancy(module_id, module, "policy", config)
                elif optim_name in _PARTS and config.reset_variant in DORMANT_VARIANTS:
                    self._measure_dormancy(module_id, module, optim_name, config)
                grads.update({
                    pid: p.grad
                    for pid, p in self.filter_param_dict_for_optimizer(self._params, optim).items()
                })
        assert not self._temp_losses
        return grads

    def _measure_dormancy(self, module_id, module, part, config) -> None:
        names, _ = _PARTS[part]
        ratio, masks = gradient_dormancy(linear_layers(_nets(module, names)),
                                         config.dormancy_threshold)
        self._dormant_masks[part] = masks
        if part == "policy":
            self._dormancy_ratio = ratio
            self.metrics.log_value((module_id, DORMANCY_RATIO_KEY), ratio, window=1)

    @override(SACTorchLearner)
    def apply_gradients(self, gradients_dict: ParamDict) -> None:
        super().apply_gradients(gradients_dict)
        if self._policy_step:
            # Target critics: Polyak step (tau) only on policy steps, as the reference.
            for module_id in self.module.keys():
                tau = self.config.get_config_for_module(module_id).tau
                for main, target in self.module[module_id].unwrapped().get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=tau)
            self._num_policy_updates += 1
        self._num_updates += 1
        for module_id in self.module.keys():
            self.metrics.log_value((module_id, NUM_POLICY_UPDATES_KEY), self._num_policy_updates,
                                   window=1)

    @override(SACTorchLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        # Skips DQNLearner's env-step-based target update (ACE's is in apply_gradients); keeps
        # the learning-rate schedules of TorchLearner/Learner.
        TorchLearner.after_gradient_based_update(self, timesteps=timesteps)

    # -- resets -----------------------------------------------------------------------------

    def ace_stats(self) -> dict[str, float]:
        """Counters the reset decision and the metrics need."""
        return {
            "num_gradient_updates": self._num_updates,
            "num_policy_updates": self._num_policy_updates,
            "dormancy_ratio": self._dormancy_ratio,
            "num_resets": self._num_resets,
            "last_reset_update": self._last_reset_update,
            "last_reset_factor": self._last_reset_factor,
        }

    @torch.no_grad()
    def soft_reset(self, factor: float, seed: int, module_id: ModuleID = "default_policy") -> None:
        """theta <- factor theta + (1 - factor) phi for the policy, critics and target critics
        (the dormant variants: only on the neurons found gradient-dormant at the last
        measurement); clears the Adam state of "qf", "qf_twin" and "policy".

        ``phi`` is a fresh build of the module's spec (its own initialiser, seeded with
        ``seed`` so that every learner draws the same). The target critics are mixed with the
        same fresh critic weights as the critics. Bumps the weights sequence number: without
        it ``env_runner_group.sync_weights`` would ignore the new weights.
        """
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = self._module_spec.module_specs[module_id].build()
        dormant_only = config.reset_variant in DORMANT_VARIANTS
        for part, (names, target_names) in _PARTS.items():
            if not all(hasattr(module, n) for n in names):
                continue  # no twin Q
            masks = self._dormant_masks.get(part) if dormant_only else None
            if dormant_only and masks is None:
                continue  # nothing measured yet for this part
            fresh_nets = _nets(fresh, names)
            soft_reset_(_nets(module, names), fresh_nets, factor, masks)
            if target_names is not None:
                soft_reset_(_nets(module, target_names), fresh_nets, factor, masks)
        for name in _RESET_OPTIMIZERS:
            if name in self._named_optimizers_of(module_id):
                self.get_optimizer(module_id, name).state.clear()
        self._num_resets += 1
        self._last_reset_update = self._num_updates
        self._last_reset_factor = float(factor)
        self._weights_seq_no += 1

    def _named_optimizers_of(self, module_id) -> set[str]:
        return {name for name, _ in self.get_optimizers_for_module(module_id)}

    # -- state ------------------------------------------------------------------------------

    @override(SACTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(ACE_LEARNER_STATE, components, not_components):
            state[ACE_LEARNER_STATE] = {
                "causal_weights": {mid: w.cpu().numpy() for mid, w in self._causal_weights.items()},
                **self.ace_stats(),
            }
        return state

    @override(SACTorchLearner)
    def set_state(self, state) -> None:
        super().set_state(state)
        ace = state.get(ACE_LEARNER_STATE)
        if ace is None:
            return
        for mid, w in ace["causal_weights"].items():
            self.set_causal_weights(w, mid)
        self._num_updates = ace["num_gradient_updates"]
        self._num_policy_updates = ace["num_policy_updates"]
        self._dormancy_ratio = ace["dormancy_ratio"]
        self._num_resets = ace["num_resets"]
        self._last_reset_update = ace["last_reset_update"]
        self._last_reset_factor = ace["last_reset_factor"]
