"""ACE's lean update path: the same gradient steps as the paper's equations written out here,
several learners in lockstep at every policy frequency, a checkpoint taken with a causal fit in
flight, and the causal worker's priority."""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_ext.algorithms.ace.callbacks import ACE_RESULTS
from tests.helpers.tiny_configs import ACE_DIM as DIM
from tests.helpers.tiny_configs import tiny_ace as _tiny

STEPS, BATCH = 6, 16


def _batch(rng, rows):
    return {
        Columns.OBS: rng.uniform(-1, 1, (rows, DIM)).astype(np.float32),
        Columns.NEXT_OBS: rng.uniform(-1, 1, (rows, DIM)).astype(np.float32),
        Columns.ACTIONS: rng.uniform(-1, 1, (rows, DIM)).astype(np.float32),
        Columns.REWARDS: rng.uniform(-1, 1, rows).astype(np.float32),
        Columns.TERMINATEDS: (rng.uniform(size=rows) < 0.2).astype(np.float32),
        "weights": rng.uniform(0.5, 1.0, rows).astype(np.float32),
    }


class _Reference:
    """ACE's gradient step written out from the reference's equations (Ji et al. 2024,
    ``model/algorithm.py::update_parameters``) on copies of the module's networks, with its
    own Adam optimizers. Per step: the critic target ``y = r + gamma (1 - d) (min_j Q'_j(s', a')
    - alpha sum_i w_i log pi_i(a'_i|s'))``, the critic losses (MSE as the reference, or Huber),
    and on every ``policy_update_freq``-th step the policy loss ``E[alpha log pi_c(a|s) -
    min_j Q_j(s, a)]``, the alpha loss ``-E[log_alpha (log pi_c + H)]`` and a Polyak step of
    the target critics. ``sequential`` (the reference): critics step first, the policy loss
    uses the stepped critics, a' is drawn before a; otherwise all losses on the pre-step
    networks, a drawn before a' (RLlib's SAC order). IS weights multiply the critic losses."""

    def __init__(self, learner, weights, **overrides):
        module = learner.module["default_policy"].unwrapped()
        self.m = copy.deepcopy(module)
        cfg = learner.config
        self.freq, self.tau, self.gamma = cfg.policy_update_freq, cfg.tau, cfg.gamma
        self.critic_loss, self.sequential = cfg.critic_loss, cfg.sequential_actor_update
        self.log_std_bounds = tuple(cfg.log_std_bounds)
        for name, value in overrides.items():
            setattr(self, name, value)
        self.w = torch.tensor(weights, dtype=torch.float32)
        self.log_alpha = learner.curr_log_alpha["default_policy"].detach().clone()
        self.log_alpha.requires_grad_(True)
        self.target_entropy = float(learner.target_entropy["default_policy"])
        self._adam = {}
        for name in ("qf", "qf_twin", "policy", "alpha"):
            group = learner.get_optimizer("default_policy", name).param_groups[0]
            self._adam[name] = {"lr": group["lr"], "eps": group["eps"], "betas": group["betas"]}
        m = self.m
        self.params = {
            "qf": list(m.qf_encoder.parameters()) + list(m.qf.parameters()),
            "qf_twin": list(m.qf_twin_encoder.parameters()) + list(m.qf_twin.parameters()),
            "policy": list(m.pi_encoder.parameters()) + list(m.pi.parameters()),
            "alpha": [self.log_alpha]}
        self.opts = {name: torch.optim.Adam(self.params[name], **self._adam[name])
                     for name in self.params}
        self.num_updates = 0

    def _q(self, enc, head, s, a):
        return head(enc({Columns.OBS: torch.cat([s, a], -1)})[ENCODER_OUT]).squeeze(-1)

    def _min_q(self, s, a, target=False):
        m = self.m
        if target:
            return torch.min(self._q(m.target_qf_encoder, m.target_qf, s, a),
                             self._q(m.target_qf_twin_encoder, m.target_qf_twin, s, a))
        return torch.min(self._q(m.qf_encoder, m.qf, s, a),
                         self._q(m.qf_twin_encoder, m.qf_twin, s, a))

    def _sample(self, s, reparameterize):
        mean, log_std = self.m.pi(self.m.pi_encoder({Columns.OBS: s})[ENCODER_OUT]).chunk(2, -1)
        normal = torch.distributions.Normal(mean, log_std.clamp(*self.log_std_bounds).exp())
        x = normal.rsample() if reparameterize else normal.sample()
        # log pi_i(a_i|s) = log N(x_i) - log(1 - tanh(x_i)^2), a = tanh(x).
        return torch.tanh(x), normal.log_prob(x) - torch.log(1 - torch.tanh(x) ** 2 + 1e-12)

    def _critic_losses(self, b, a2, logp2):
        m, s, a = self.m, b[Columns.OBS], b[Columns.ACTIONS]
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            y = b[Columns.REWARDS] + self.gamma * (1 - b[Columns.TERMINATEDS]) * (
                self._min_q(b[Columns.NEXT_OBS], a2, target=True)
                - alpha * (logp2 * self.w).sum(-1))
        losses = {}
        for name, enc, head in (("qf", m.qf_encoder, m.qf),
                                ("qf_twin", m.qf_twin_encoder, m.qf_twin)):
            q = self._q(enc, head, s, a)
            error = (q - y) ** 2 if self.critic_loss == "mse" else \
                torch.nn.functional.huber_loss(q, y, reduction="none")
            losses[name] = (b["weights"] * error).mean()
        return losses

    def _policy_losses(self, s, a_new, logp):
        alpha = self.log_alpha.exp().detach()
        logp_c = (logp * self.w).sum(-1)
        return {"policy": (alpha * logp_c - self._min_q(s, a_new)).mean(),
                "alpha": -(self.log_alpha * (logp_c.detach() + self.target_entropy)).mean()}

    def _apply(self, losses):
        grads = {name: torch.autograd.grad(loss, self.params[name])
                 for name, loss in losses.items()}
        for name, gs in grads.items():
            for p, g in zip(self.params[name], gs, strict=True):
                p.grad = g
            self.opts[name].step()

    def step(self, b):
        s = b[Columns.OBS]
        policy_step = self.num_updates % self.freq == 0
        if self.sequential:
            with torch.no_grad():
                a2, logp2 = self._sample(b[Columns.NEXT_OBS], False)
            self._apply(self._critic_losses(b, a2, logp2))
            if policy_step:
                self._apply(self._policy_losses(s, *self._sample(s, True)))
        else:
            if policy_step:
                a_new, logp = self._sample(s, True)
            with torch.no_grad():
                a2, logp2 = self._sample(b[Columns.NEXT_OBS], False)
            losses = self._critic_losses(b, a2, logp2)
            if policy_step:
                losses.update(self._policy_losses(s, a_new, logp))
            self._apply(losses)
        if policy_step:
            with torch.no_grad():
                for main, target in self.m.get_target_network_pairs():
                    for p, tp in zip(main.parameters(), target.parameters(), strict=True):
                        tp.mul_(1 - self.tau).add_(self.tau * p)
        self.num_updates += 1

    @torch.no_grad()
    def soft_reset(self, fresh, factor):
        """theta <- factor theta + (1 - factor) phi for the policy, the critics and the target
        critics (the targets mixed with the fresh *critics*), Adam state of the critics and the
        policy cleared, alpha's kept (the reference's ``perturb``)."""
        pairs = [("pi_encoder", "pi_encoder"), ("pi", "pi")]
        for q in ("qf", "qf_twin"):
            for part in ("_encoder", ""):
                pairs += [(q + part, q + part), ("target_" + q + part, q + part)]
        for name, fresh_name in pairs:
            for p, f in zip(getattr(self.m, name).parameters(),
                            getattr(fresh, fresh_name).parameters(), strict=True):
                p.mul_(factor).add_((1 - factor) * f)
        for name in ("qf", "qf_twin", "policy"):
            self.opts[name] = torch.optim.Adam(self.params[name], **self._adam[name])


def _update(learner, data, seed):
    torch.manual_seed(seed)
    learner.update(batch=MultiAgentBatch({"default_policy": SampleBatch(data)}, STEPS * BATCH),
                   minibatch_size=None, num_epochs=1, shuffle_batch_per_epoch=False,
                   timesteps={})


def _reference_steps(reference, data, seed):
    torch.manual_seed(seed)
    tensors = {k: torch.as_tensor(v) for k, v in data.items()}
    for i in range(STEPS):
        reference.step({k: v[i * BATCH:(i + 1) * BATCH] for k, v in tensors.items()})


def _train_both(learner, reference, data, seed) -> None:
    """All STEPS batches in one learner update call (the chunked path); the reference takes
    the same batches in order from the same random stream."""
    _update(learner, data, seed)
    _reference_steps(reference, data, seed)


def _assert_same(learner, reference):
    module = learner.module["default_policy"].unwrapped()
    for (name, p), q in zip(module.named_parameters(), reference.m.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    torch.testing.assert_close(learner.curr_log_alpha["default_policy"].detach(),
                               reference.log_alpha.detach(), rtol=0, atol=1e-6)


def _learner(**training):
    from rllib_ext.envs.causal_reach import CausalReachEnv

    return _tiny(train_batch_size_per_learner=BATCH, **training).build_learner(
        env=CausalReachEnv(influence=[1.0, 0.0]))


# The reference's defaults, then each deviation one config away. A log-std clamp that binds
# for this tiny network ((-0.05, 0.05)) shows the configured clamp is the one used.
SETTINGS = {
    "reference defaults": {},
    "huber": {"critic_loss": "huber"},
    "joint update": {"sequential_actor_update": False},
    "joint, huber, freq 1": {"sequential_actor_update": False, "critic_loss": "huber",
                             "policy_update_freq": 1},
    "binding log-std clamp": {"log_std_bounds": (-0.05, 0.05)},
}


@pytest.mark.parametrize("training", SETTINGS.values(), ids=SETTINGS.keys())
def test_lean_steps_equal_the_equations(ray_session, training):
    training = {"policy_update_freq": 2, "tau": 0.1, "initial_alpha": 0.5, **training}
    learner = _learner(**training)
    weights = [1.5, 0.5]
    learner.set_causal_weights(weights)
    reference = _Reference(learner, weights)
    _train_both(learner, reference, _batch(np.random.default_rng(0), STEPS * BATCH), seed=7)
    _assert_same(learner, reference)
    stats = learner.ace_stats()
    assert stats["num_gradient_updates"] == STEPS
    assert stats["num_policy_updates"] == math.ceil(STEPS / training["policy_update_freq"])


def test_updates_after_a_soft_reset_equal_the_equations(ray_session):
    """STEPS updates, a soft reset with factor 0.7 (fresh weights from the module spec at a
    given seed), STEPS more: equal to the reference's steps around its ``perturb``."""
    learner = _learner(policy_update_freq=2, tau=0.1, initial_alpha=0.5)
    learner.set_causal_weights([1.5, 0.5])
    reference = _Reference(learner, [1.5, 0.5])
    rng = np.random.default_rng(2)
    _train_both(learner, reference, _batch(rng, STEPS * BATCH), seed=1)
    learner.soft_reset(0.7, seed=11)
    from rllib_ext.envs.causal_reach import CausalReachEnv

    spec = learner.config.get_rl_module_spec(env=CausalReachEnv(influence=[1.0, 0.0]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        fresh = spec.build()
    reference.soft_reset(fresh, 0.7)
    _assert_same(learner, reference)
    assert learner.get_optimizer("default_policy", "policy").state == {}
    assert learner.get_optimizer("default_policy", "alpha").state != {}
    _train_both(learner, reference, _batch(rng, STEPS * BATCH), seed=2)
    _assert_same(learner, reference)


# Each piece of the reference changed back on the reference's side alone: the comparison
# must then fail, or the test above could not see that piece.
CHANGED = {
    "policy every step": {"freq": 1},
    "huber instead of mse": {"critic_loss": "huber"},
    "joint instead of sequential": {"sequential": False},
    "RLlib's log-std clamp": {"log_std_bounds": (-5.0, 2.0)},
}


@pytest.mark.parametrize("change", CHANGED.values(), ids=CHANGED.keys())
def test_the_reference_is_sensitive_to_each_piece(ray_session, change):
    training = {"policy_update_freq": 2}
    if "log_std_bounds" in change:
        training["log_std_bounds"] = (-0.05, 0.05)
    learner = _learner(**training)
    reference = _Reference(learner, [1.0, 1.0], **change)
    _train_both(learner, reference, _batch(np.random.default_rng(1), STEPS * BATCH), seed=3)
    module = learner.module["default_policy"].unwrapped()
    gap = max((p - q).abs().max().item()
              for p, q in zip(module.parameters(), reference.m.parameters(), strict=True))
    assert gap > 1e-4


@pytest.mark.parametrize("freq", [1, 2])
def test_two_learners_stay_identical(ray_session, freq):
    algo = (_tiny(policy_update_freq=freq, causal_async=False, reset_interval=5)
            .learners(num_learners=2, num_cpus_per_learner=0.5)
            .build_algo())
    try:
        before = algo.learner_group.get_weights()["default_policy"]
        for _ in range(3):
            result = algo.train()
        weights = [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: {k: v.detach().cpu().clone() for k, v in
                             learner.module["default_policy"].unwrapped().state_dict().items()})]
    finally:
        algo.stop()
    ace = result[ACE_RESULTS]
    assert ace["num_gradient_updates"] >= 10 and ace["num_resets"] >= 1
    first, second = weights
    assert any(not np.array_equal(np.asarray(before[k]), first[k].numpy())
               for k in before if k in first)
    for k in first:
        torch.testing.assert_close(first[k], second[k], rtol=0, atol=0, msg=k)


def test_checkpoint_with_a_fit_in_flight_resubmits_it(ray_session, tmp_path):
    algo = _tiny(learn=False, slow_fit=True).build_algo()
    try:
        for _ in range(2):  # 40 steps: the FIFO is full, a 3 s fit goes out
            result = algo.train()
        assert result[ACE_RESULTS]["causal_fit_pending"] == 1
        assert algo.get_state()["ace"]["fit_in_flight"]
        path = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        first = restored.train()[ACE_RESULTS]
        assert first["causal_fit_pending"] == 1 and first["causal_fits"] == 0
        for _ in range(2000):
            ace = restored.train()[ACE_RESULTS]
            if ace["causal_fits"]:
                break
        assert ace["causal_fits"] == 1 and not np.allclose(restored.causal.weights, 1.0)
        assert ace["causal_fit_latency_s"] >= 3.0
    finally:
        restored.stop()


def test_causal_worker_runs_at_the_creating_process_priority(ray_session):
    from rllib_ext.algorithms.ace.causal_state import create_causal_worker

    worker = create_causal_worker(0, 1)
    try:
        info = ray.get(worker.info.remote())
    finally:
        ray.kill(worker)
    assert info["num_threads"] == 1
    # Ray starts workers at niceness 15; the worker moves to ours unless the OS forbids it
    # (then the reason is reported, and ACE warns).
    assert info["niceness"] == os.getpriority(os.PRIO_PROCESS, 0) or info["priority_error"]
