"""``GradientStepLearner.gradient_step``: only the named optimizers move, by hand-computed
Adam steps; the inspected gradients are the averaged, unclipped ones; the clip norm is logged;
a non-finite gradient skips the whole step and is counted. On ACE's learner (optimizers "qf",
"qf_twin", "policy", "alpha")."""

from __future__ import annotations

import math

import pytest
import torch
from ray.rllib.utils.metrics import ALL_MODULES

from rllib_ext import ACEConfig
from rllib_ext.core.gradient_step import GradientStepLearner
from rllib_ext.core.non_finite import NON_FINITE_GRADIENT_STEPS_KEY
from rllib_ext.envs.causal_reach import CausalReachEnv

MID = "default_policy"
LR = 1e-3


def _learner(**training):
    learner = (ACEConfig()
               .environment(env=None)
               .training(critic_lr=LR, actor_lr=LR, **training)
               .rl_module(model_config={"fcnet_hiddens": [4]})
               .debugging(seed=0)
               .build_learner(env=CausalReachEnv(influence=[1.0, 0.0])))
    assert isinstance(learner, GradientStepLearner)
    module = learner.module[MID].unwrapped()
    return learner, list(module.qf_encoder.parameters()) + list(module.qf.parameters()), \
        list(module.pi_encoder.parameters()) + list(module.pi.parameters())


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_only_the_named_optimizers_step_by_adams_first_step():
    learner, qf, pi = _learner()
    before_qf, before_pi = _snapshot(qf), _snapshot(pi)
    # d(loss)/d(theta) = 1 for every critic and policy weight.
    loss = sum(p.sum() for p in qf) + sum(p.sum() for p in pi)
    learner.gradient_step(MID, loss, ["qf"], learner.config)
    # Adam's first step with gradient g: lr * g / (|g| + eps) = lr * 1 / (1 + 1e-8) per weight.
    step = LR / (1.0 + 1e-8)
    for p, b in zip(qf, before_qf, strict=True):
        torch.testing.assert_close(p.detach(), b - step, rtol=0, atol=1e-9)
    for p, b in zip(pi, before_pi, strict=True):
        assert torch.equal(p.detach(), b)
    assert learner.get_optimizer(MID, "policy").state == {}
    assert all(p.grad is None for p in pi)


def test_inspect_sees_unclipped_gradients_and_the_norm_is_logged():
    learner, qf, _ = _learner(grad_clip=0.01, grad_clip_by="global_norm")
    seen = {}
    loss = sum((2.0 * p).sum() for p in qf)  # every gradient is 2
    learner.gradient_step(MID, loss, ["qf"], learner.config,
                          inspect=lambda grads: seen.update(
                              {k: g.clone() for k, g in grads.items()}),
                          log_global_norm=True)
    count = sum(p.numel() for p in qf)
    assert len(seen) == len(qf) and all(torch.all(g == 2.0) for g in seen.values())
    norm = learner.metrics.peek((MID, "gradients_qf_global_norm"))
    assert norm == pytest.approx(2.0 * math.sqrt(count), rel=1e-5)
    # The applied gradients were clipped to a global norm of 0.01.
    applied = torch.sqrt(sum((p.grad ** 2).sum() for p in qf))
    assert applied.item() == pytest.approx(0.01, rel=1e-4)


def test_a_non_finite_gradient_skips_the_step_and_is_counted():
    learner, qf, pi = _learner()
    before_qf, before_pi = _snapshot(qf), _snapshot(pi)
    loss = sum(p.sum() for p in pi) + qf[0].sum() * float("inf")
    learner.gradient_step(MID, loss, ["qf", "policy"], learner.config)
    for p, b in zip(qf + pi, before_qf + before_pi, strict=True):
        assert torch.equal(p.detach(), b)
    assert learner.metrics.peek((ALL_MODULES, NON_FINITE_GRADIENT_STEPS_KEY)) == 1
    assert learner.get_optimizer(MID, "qf").state == {}
