"""ACE's torch learner: SAC with the causality-aware (per-dimension weighted) entropy, delayed
actor/alpha/target updates, gradient-dormancy measurement and soft resets, on its own update
path (many gradient steps per ``learner_group.update``, no DDP forward).

Notation (Ji et al. 2024; reference ``model/algorithm.py::ACE_agent.update_parameters``):
``w`` = causal weights (A,), positive, summing to A (all ones before the first causal fit, which
makes every loss below SAC's); ``log pi_c(a|s) = sum_i w_i log pi_i(a_i|s)`` = the weighted,
tanh-corrected per-dimension log-likelihood, so ``-E[log pi_c] = sum_i w_i H_i`` is the
causality-aware entropy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
from ray.rllib.core.rl_module.rl_module import DEFAULT_MODULE_ID
from ray.rllib.utils.annotations import override
from ray.rllib.utils.typing import ModuleID

from rllib_ext.algorithms.ace.ace_keys import (
    ACE_LEARNER_STATE,
    ALPHA_LOSS_KEY,
    ALPHA_VALUE_KEY,
    CAUSAL_WEIGHTED_LOGP_KEY,
    DORMANCY_RATIO_KEY,
    LOGP_NEXT_PER_DIM,
    LOGP_PER_DIM,
    NUM_GRADIENT_UPDATES_KEY,
    NUM_POLICY_UPDATES_KEY,
    Q_CURR,
    Q_TARGET_NEXT,
)
from rllib_ext.algorithms.ace.dormancy import gradient_dormancy, linear_layers, soft_reset_
from rllib_ext.core.chunked_learner import (
    ChunkedUpdateTorchLearner,
)
from rllib_ext.core.gradient_step import GradientStepLearner
from rllib_ext.core.replay import IS_WEIGHTS, REPLAY_INDEX
from rllib_ext.core.rllib_compat import (
    bump_weights_seq_no,
    learner_device,
    learner_module_spec,
    wants_component,
)
from rllib_ext.core.target_networks import polyak_update

# Optimizers whose state a reset clears (alpha keeps its state, as the reference).
_RESET_OPTIMIZERS = ("qf", "qf_twin", "policy")
# (network, target network or None) attribute names of SAC's module, per optimizer.
_PARTS = {
    "policy": (("pi_encoder", "pi"), None),
    "qf": (("qf_encoder", "qf"), ("target_qf_encoder", "target_qf")),
    "qf_twin": (("qf_twin_encoder", "qf_twin"), ("target_qf_twin_encoder", "target_qf_twin")),
}


@dataclass
class ModuleCounters:
    """One RL module's ACE counters on a learner: its gradient and policy steps, the last
    measured gradient dormancy (and, for ``reset_scope="dormant"``, the dormant masks), its
    resets. Each module (policy) of a multi-agent run has its own: modules step together but
    measure and reset on their own."""

    num_gradient_updates: int = 0
    num_policy_updates: int = 0
    dormancy_ratio: float = 0.0
    num_resets: int = 0
    last_reset_update: int = 0
    last_reset_factor: float = 1.0
    #: Not checkpointed (a restored run measures again before a dormant-only reset).
    dormant_masks: dict = field(default_factory=dict, repr=False)

    def stats(self) -> dict[str, float]:
        """The checkpointed counters, under the metric keys."""
        stats = asdict(self)
        del stats["dormant_masks"]
        return stats


def _nets(module, names) -> torch.nn.ModuleList:
    return torch.nn.ModuleList([getattr(module, n) for n in names])


def critic_losses(
    *,
    batch: dict[str, torch.Tensor],
    fwd_out: dict[str, torch.Tensor],
    weights: torch.Tensor,
    log_alpha: torch.Tensor,
    gamma: float,
    twin_q: bool,
    critic_loss: str = "mse",
) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
    """ACE's critic losses for one batch: ``({"qf": .., "qf_twin": ..}, |TD error| (B,),
    metrics)``, from :meth:`~.default_ace_torch_rl_module.DefaultACETorchRLModule.
    forward_critics`'s outputs. Each loss reaches only its own critic's parameters."""
    # alpha enters the target as a constant (.detach()): only the alpha loss trains log_alpha.
    alpha = log_alpha.exp().detach()
    # log pi_c(a'|s') = sum_i w_i log pi_i(a'_i|s'): the causality-weighted log-likelihood of
    # a' ~ pi(.|s') (sampled without gradient, module side). The weights are constants.
    logp_c_next = (fwd_out[LOGP_NEXT_PER_DIM] * weights).sum(-1)

    # Critic target (soft Bellman backup with the causality-aware entropy), 1-step:
    #   y = r + gamma (1 - done) [min_j Q'_j(s', a') - alpha log pi_c(a'|s')].
    # Detached: the target is a regression label, no gradient into the target nets.
    q_next = fwd_out[Q_TARGET_NEXT] - alpha * logp_c_next
    not_done = 1.0 - batch[Columns.TERMINATEDS].float()
    y = (batch[Columns.REWARDS] + gamma * not_done * q_next).detach()

    # Critic losses, weighted by the replay's importance weights (all 1 when uniform):
    # "mse" = E[(Q_j(s, a) - y)^2] (the reference's F.mse_loss per critic), "huber" = RLlib
    # SAC's Huber(delta=1). Q_j(s, a) of the replayed actions depends only on critic j.
    def loss(q):
        if critic_loss == "mse":
            return (q - y) ** 2
        return torch.nn.functional.huber_loss(q, y, reduction="none", delta=1.0)

    is_weights = batch[IS_WEIGHTS]
    q = fwd_out[QF_PREDS]
    losses = {"qf": torch.mean(is_weights * loss(q))}
    td_error = torch.abs(q - y)
    if twin_q:
        q_twin = fwd_out[QF_TWIN_PREDS]
        losses["qf_twin"] = torch.mean(is_weights * loss(q_twin))
        # Mean TD error of both critics: the replay's priority signal, as SAC.
        td_error = 0.5 * (td_error + torch.abs(q_twin - y))
    metrics = {QF_LOSS_KEY: losses["qf"], TD_ERROR_MEAN_KEY: torch.mean(td_error),
               ALPHA_VALUE_KEY: alpha.reshape(-1)[0]}
    if twin_q:
        metrics[QF_TWIN_LOSS_KEY] = losses["qf_twin"]
    return losses, td_error.detach(), metrics


def policy_losses(
    *,
    fwd_out: dict[str, torch.Tensor],
    weights: torch.Tensor,
    log_alpha: torch.Tensor,
    target_entropy: float | torch.Tensor,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """ACE's policy and alpha losses for one batch: ``({"policy": .., "alpha": ..}, metrics)``,
    from :meth:`~.default_ace_torch_rl_module.DefaultACETorchRLModule.forward_policy`'s
    outputs (:data:`LOGP_PER_DIM`, :data:`Q_CURR`)."""
    alpha = log_alpha.exp().detach()  # a constant in the policy loss, as in the critics'
    # log pi_c(a|s) for a ~ pi(.|s), reparameterised: the policy loss differentiates through
    # it into pi's parameters.
    logp_c = (fwd_out[LOGP_PER_DIM] * weights).sum(-1)
    losses = {
        # Policy loss: E[alpha log pi_c(a|s) - min_j Q_j(s, a)] (minimising it maximises Q
        # plus the causality-aware entropy; the critics were frozen in the forward pass, so
        # only pi gets gradients).
        "policy": torch.mean(alpha * logp_c - fwd_out[Q_CURR]),
        # Alpha loss: -E[log_alpha (log pi_c(a|s) + H_target)], H_target = -A (SAC's "auto").
        # The log-prob is a constant here (.detach()): this loss trains log_alpha only, tuning
        # alpha against the *weighted* entropy (the weights sum to A, so the scale matches).
        "alpha": -torch.mean(log_alpha * (logp_c.detach() + target_entropy)),
    }
    metrics = {
        POLICY_LOSS_KEY: losses["policy"],
        ALPHA_LOSS_KEY: losses["alpha"],
        QF_MEAN_KEY: torch.mean(fwd_out[Q_CURR]),
        CAUSAL_WEIGHTED_LOGP_KEY: torch.mean(logp_c),
        LOGPS_KEY: torch.mean(fwd_out[LOGP_PER_DIM].sum(-1)),
    }
    return losses, metrics


def ace_losses(
    *,
    batch: dict[str, torch.Tensor],
    fwd_out: dict[str, torch.Tensor],
    weights: torch.Tensor,
    log_alpha: torch.Tensor,
    target_entropy: float | torch.Tensor,
    gamma: float,
    twin_q: bool,
    policy_step: bool,
    critic_loss: str = "mse",
) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
    """All of ACE's losses on the same (pre-step) networks: ``({optimizer name: loss},
    |TD error| (B,), metrics)`` - :func:`critic_losses`, plus :func:`policy_losses` on a
    policy step (``fwd_out`` then holds the policy pass's outputs too). Each loss reaches only
    its own optimizer's parameters, so one backward over their sum gives every network
    exactly its own loss's gradient (the ``sequential_actor_update=False`` step)."""
    losses, td_error, metrics = critic_losses(
        batch=batch, fwd_out=fwd_out, weights=weights, log_alpha=log_alpha, gamma=gamma,
        twin_q=twin_q, critic_loss=critic_loss)
    if policy_step:
        more, more_metrics = policy_losses(fwd_out=fwd_out, weights=weights,
                                           log_alpha=log_alpha, target_entropy=target_entropy)
        losses.update(more)
        metrics.update(more_metrics)
    return losses, td_error, metrics


class ACETorchLearner(ChunkedUpdateTorchLearner, GradientStepLearner, SACTorchLearner):
    """SAC's learner (optimizers "qf", "qf_twin", "policy", "alpha") with ACE's losses.

    **One gradient step** (:meth:`_uncompiled_update`): decide once whether this is a policy
    step (the 1st, then every ``policy_update_freq``-th: the 1st, 3rd, ... for 2). With
    ``sequential_actor_update`` (the reference's order): the critic pass, the critic losses
    (:func:`critic_losses`), a critic step; on a policy step then the policy pass on the
    stepped critics, the policy and alpha losses (:func:`policy_losses`), their step, and a
    Polyak update of the target critics. Otherwise all losses on the pre-step networks and one
    backward over their sum (:func:`ace_losses`; each reaches only its own network, so this
    equals SAC's one-backward-per-optimizer). Each step (:meth:`_gradient_step`) averages the
    gradients over learners, measures gradient dormancy, clips per optimizer and skips a step
    with a non-finite gradient (RLlib's rule, one fused check). On critic-only steps the
    policy and alpha gradients stay unset (``None``), so Adam skips them.

    RLlib methods overridden, and why:

    - ``TorchLearner._update``: many gradient steps per ``learner_group.update`` call
      (:class:`~rllib_ext.core.chunked_learner.ChunkedUpdateTorchLearner`), so
      RLlib's per-call overhead is paid once per ``training_step``.
    - ``TorchLearner._uncompiled_update``: RLlib's forward → losses → gradients → apply
      chain runs the whole SAC forward on every step and goes through DDP's ``forward``,
      which fails on critic-only steps ("parameters that were not used in producing loss");
      here the unwrapped module's passes are called and each step is one
      :meth:`~rllib_ext.core.gradient_step.GradientStepLearner.gradient_step` (gradients
      averaged over learners explicitly, RLlib's clip and ``apply_gradients``).
    - ``Learner.compute_loss_for_module``: required by RLlib, unused here; it raises and
      names :func:`ace_losses`.
    - ``after_gradient_based_update``: skips DQN's env-step-based target update (ACE's
      follows the policy steps); keeps the learning-rate schedules.
    """

    @override(SACTorchLearner)
    def build(self) -> None:
        super().build()
        self._causal_weights: dict[ModuleID, torch.Tensor] = {}
        self._counters: dict[ModuleID, ModuleCounters] = {}
        self._priority_updates: dict[ModuleID, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def counters(self, module_id: ModuleID = DEFAULT_MODULE_ID) -> ModuleCounters:
        """``module_id``'s counters (zero until its first step)."""
        if module_id not in self._counters:
            self._counters[module_id] = ModuleCounters()
        return self._counters[module_id]

    # -- causal weights ---------------------------------------------------------------------

    def causal_weights(self, module_id: ModuleID = DEFAULT_MODULE_ID) -> torch.Tensor:
        """Current weights (A,) of ``module_id``; ones until the first causal fit."""
        if module_id not in self._causal_weights:
            dim = int(np.prod(self.module[module_id].unwrapped().action_space.shape))
            self._causal_weights[module_id] = torch.ones(dim, device=learner_device(self))
        return self._causal_weights[module_id]

    def set_causal_weights(self, weights, module_id: ModuleID = DEFAULT_MODULE_ID) -> None:
        """Replaces the weights used by the losses from the next gradient step on."""
        current = self.causal_weights(module_id)
        new = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=current.device)
        if new.shape != current.shape or not torch.isfinite(new).all():
            raise ValueError(f"causal weights need shape {tuple(current.shape)} and finite "
                             f"values, got {np.asarray(weights)}.")
        self._causal_weights[module_id] = new

    # -- one gradient step ------------------------------------------------------------------

    @override(TorchLearner)
    def _uncompiled_update(self, batch, **kwargs):
        """One ACE gradient step on ``batch`` (see the class docstring)."""
        total_loss = {}
        for module_id, module_batch in batch.items():
            module = self.module[module_id].unwrapped()
            config = self.config.get_config_for_module(module_id)
            counters = self.counters(module_id)
            policy_step = counters.num_gradient_updates % config.policy_update_freq == 0
            common = {"weights": self.causal_weights(module_id),
                      "log_alpha": self.curr_log_alpha[module_id]}
            if config.sequential_actor_update:
                # The reference's order: the critics step on their loss first; on a policy
                # step the policy pass then runs on the updated critics (it draws
                # a' ~ pi(.|s') before a ~ pi(.|s), as the reference).
                losses, td_error, stats = critic_losses(
                    batch=module_batch, fwd_out=module.forward_critics(module_batch),
                    gamma=config.gamma, twin_q=config.twin_q, critic_loss=config.critic_loss,
                    **common)
                total = self._gradient_step(module_id, module, config, losses, policy=False)
                if policy_step:
                    losses, more = policy_losses(
                        fwd_out=module.forward_policy(module_batch),
                        target_entropy=self.target_entropy[module_id], **common)
                    stats.update(more)
                    total = total + self._gradient_step(module_id, module, config, losses,
                                                        policy=True)
            else:
                # All losses on the pre-step networks, one backward (RLlib's SAC order). The
                # policy pass first: it draws a ~ pi(.|s) before the critic pass draws
                # a' ~ pi(.|s'), as RLlib's SAC forward.
                fwd_out = module.forward_policy(module_batch) if policy_step else {}
                fwd_out.update(module.forward_critics(module_batch))
                losses, td_error, stats = ace_losses(
                    batch=module_batch, fwd_out=fwd_out,
                    target_entropy=self.target_entropy[module_id], gamma=config.gamma,
                    twin_q=config.twin_q, policy_step=policy_step,
                    critic_loss=config.critic_loss, **common)
                total = self._gradient_step(module_id, module, config, losses,
                                            policy=policy_step, critics=True)
            if policy_step:
                # Target critics: Polyak step (tau) only on policy steps, as the reference.
                for main, target in module.get_target_network_pairs():
                    polyak_update(main, target, config.tau)
                counters.num_policy_updates += 1
            counters.num_gradient_updates += 1
            if REPLAY_INDEX in module_batch:
                self._priority_updates.setdefault(module_id, []).append(
                    (module_batch[REPLAY_INDEX], td_error))
            stats[NUM_GRADIENT_UPDATES_KEY] = counters.num_gradient_updates
            stats[NUM_POLICY_UPDATES_KEY] = counters.num_policy_updates
            self.log_step_stats(module_id, stats)
            total_loss[module_id] = total
        return {}, total_loss, {}

    def _gradient_step(self, module_id, module, config, losses: dict[str, torch.Tensor], *,
                       policy: bool, critics: bool | None = None) -> torch.Tensor:
        """:meth:`~rllib_ext.core.gradient_step.GradientStepLearner.gradient_step` of the
        optimizers named in ``losses`` on their summed loss, measuring gradient dormancy on
        the averaged gradients (``policy``/``critics``: which networks; the critics' only for
        ``reset_scope="dormant"``, by default when ``policy`` is False). Returns the summed
        loss, detached."""
        total = sum(losses.values())
        self.gradient_step(
            module_id, total, list(losses), config,
            inspect=lambda _: self._measure_dormancy(
                module_id, module, config, policy=policy,
                critics=not policy if critics is None else critics))
        return total.detach()

    def _measure_dormancy(self, module_id, module, config, *, policy: bool,
                          critics: bool) -> None:
        """Gradient dormancy of the policy (after a policy backward: the ratio the resets
        scale by) and, for the dormant-only scope, of each critic (their reset masks)."""
        parts = (["policy"] if policy else []) + (
            [p for p in ("qf", "qf_twin") if hasattr(module, _PARTS[p][0][0])]
            if critics and config.reset_scope == "dormant" else [])
        counters = self.counters(module_id)
        for part in parts:
            names, _ = _PARTS[part]
            ratio, masks = gradient_dormancy(linear_layers(_nets(module, names)),
                                             config.dormancy_threshold)
            counters.dormant_masks[part] = masks
            if part == "policy":
                counters.dormancy_ratio = ratio
                self.metrics.log_value((module_id, DORMANCY_RATIO_KEY), ratio, window=1)

    def pop_priority_updates(self) -> dict[ModuleID, tuple[np.ndarray, np.ndarray]]:
        """``{module_id: (replay rows, |TD errors|)}`` of the steps since the last call, for
        the algorithm's prioritised replays (modules whose batches carried no replay index
        are absent)."""
        updates, self._priority_updates = self._priority_updates, {}
        return {module_id: (torch.cat([u[0] for u in steps]).cpu().numpy(),
                            torch.cat([u[1] for u in steps]).float().cpu().numpy())
                for module_id, steps in updates.items()}

    @override(SACTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "ACETorchLearner takes its gradient steps in _uncompiled_update; the losses are "
            "rllib_ext.algorithms.ace.torch.ace_torch_learner.ace_losses.")

    @override(SACTorchLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        TorchLearner.after_gradient_based_update(self, timesteps=timesteps)

    # -- resets -----------------------------------------------------------------------------

    def ace_stats(self, module_id: ModuleID = DEFAULT_MODULE_ID) -> dict[str, float]:
        """``module_id``'s counters the reset decision and the metrics need."""
        return self.counters(module_id).stats()

    def module_ace_stats(self, module_ids) -> dict[ModuleID, dict[str, float]]:
        """:meth:`ace_stats` of each of ``module_ids``."""
        return {module_id: self.ace_stats(module_id) for module_id in module_ids}

    @torch.no_grad()
    def soft_reset(self, factor: float, seed: int,
                   module_id: ModuleID = DEFAULT_MODULE_ID) -> None:
        """theta <- factor theta + (1 - factor) phi for the policy, critics and target critics
        (``reset_scope="dormant"``: only on the neurons found gradient-dormant at the last
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
            fresh = learner_module_spec(self).module_specs[module_id].build()
        dormant_only = config.reset_scope == "dormant"
        counters = self.counters(module_id)
        for part, (names, target_names) in _PARTS.items():
            if not all(hasattr(module, n) for n in names):
                continue  # no twin Q
            masks = counters.dormant_masks.get(part) if dormant_only else None
            if dormant_only and masks is None:
                continue  # nothing measured yet for this part
            fresh_nets = _nets(fresh, names)
            soft_reset_(_nets(module, names), fresh_nets, factor, masks)
            if target_names is not None:
                soft_reset_(_nets(module, target_names), fresh_nets, factor, masks)
        named = {name for name, _ in self.get_optimizers_for_module(module_id)}
        for name in _RESET_OPTIMIZERS:
            if name in named:
                self.get_optimizer(module_id, name).state.clear()
        counters.num_resets += 1
        counters.last_reset_update = counters.num_gradient_updates
        counters.last_reset_factor = float(factor)
        bump_weights_seq_no(self)

    # -- state ------------------------------------------------------------------------------

    @override(SACTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if wants_component(self, ACE_LEARNER_STATE, components, not_components):
            state[ACE_LEARNER_STATE] = {
                "causal_weights": {mid: w.cpu().numpy() for mid, w in self._causal_weights.items()},
                "counters": {mid: c.stats() for mid, c in self._counters.items()},
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
        for mid, stats in ace["counters"].items():
            self._counters[mid] = ModuleCounters(**stats)
