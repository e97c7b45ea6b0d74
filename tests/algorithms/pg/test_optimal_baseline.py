"""The variance-optimal per-parameter baseline: closed form, torch.func sums, unbiasedness."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical

from rllib_ext import PGConfig
from rllib_ext.algorithms.pg.advantages import compute_advantages
from rllib_ext.algorithms.pg.torch.pg_torch_learner import PGTorchLearner
from rllib_ext.algorithms.pg.torch.score_gradients import (
    optimal_baseline,
    per_trajectory_score_sums,
)


class LinearSoftmaxPolicy(torch.nn.Module):
    """logits = W s: d log pi(a|s) / dW[j, d] = (1[j = a] - pi(j|s)) s_d, easy by hand."""

    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, batch):
        return {Columns.ACTION_DIST_INPUTS: batch[Columns.OBS] @ self.weight.T}

    @staticmethod
    def get_train_action_dist_cls():
        return TorchCategorical


# Two trajectories under W = 0 (pi = [.5, .5] everywhere), gamma = 1, whole returns:
#   tau_1: (s=[1, 0], a=1), (s=[0, 2], a=0), rewards [1, 1] -> R_1 = 2
#   tau_2: (s=[1, 3], a=1), reward 5                          -> R_2 = 5
# Scores (rows: action j, columns: obs dim d), with e_a - pi = [-.5, .5] for a=1, [.5, -.5] a=0:
#   g_1 = [-.5, .5]^T [1, 0] + [.5, -.5]^T [0, 2] = [[-.5, 1], [.5, -1]]
#   g_2 = [-.5, .5]^T [1, 3]                      = [[-.5, -1.5], [.5, 1.5]]
OBS = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 3.0]])
ACTIONS = torch.tensor([1, 0, 1])
TRAJ = torch.tensor([0, 0, 1])
RETURNS = torch.tensor([2.0, 2.0, 5.0])
G1 = torch.tensor([[-0.5, 1.0], [0.5, -1.0]])
G2 = torch.tensor([[-0.5, -1.5], [0.5, 1.5]])
# b_k = sum_i g_ik^2 R_i / sum_i g_ik^2:
#   column d=0: (.25 * 2 + .25 * 5) / (.25 + .25) = 3.5
#   column d=1: (1 * 2 + 2.25 * 5) / (1 + 2.25) = 13.25 / 3.25 = 53/13
B = torch.tensor([[3.5, 53 / 13], [3.5, 53 / 13]])


def test_per_trajectory_scores_by_hand():
    module = LinearSoftmaxPolicy(torch.zeros(2, 2))
    sums = per_trajectory_score_sums(
        module, OBS, ACTIONS, TRAJ, 2, {"g": torch.ones(3), "h": RETURNS}
    )
    torch.testing.assert_close(sums["g"]["weight"], torch.stack([G1, G2]))
    torch.testing.assert_close(sums["h"]["weight"], torch.stack([2 * G1, 5 * G2]))


def test_optimal_baseline_closed_form():
    g = torch.stack([G1, G2])
    torch.testing.assert_close(optimal_baseline(g, g * torch.tensor([2.0, 5.0])[:, None, None]), B)
    # A parameter with zero score in every trajectory gets b = 0, not NaN.
    assert optimal_baseline(torch.zeros(2, 3), torch.ones(2, 3)).tolist() == [0.0, 0.0, 0.0]


def test_learner_gradient_with_optimal_baseline_by_hand():
    # grad of the loss = -1/N sum_i (h_i - b g_i), N = 3 steps:
    #   sum h = 2 g_1 + 5 g_2 = [[-3.5, -5.5], [3.5, 5.5]];  sum g = [[-1, -.5], [1, .5]]
    #   column 0: -(-3.5 - 3.5 * -1) = 0;  column 1: -(-5.5 - 53/13 * -.5) = 5.5 - 26.5/13
    module = LinearSoftmaxPolicy(torch.zeros(2, 2))
    batch = {Columns.OBS: OBS, Columns.ACTIONS: ACTIONS}
    log_pi = TorchCategorical.from_logits(module(batch)[Columns.ACTION_DIST_INPUTS]).logp(ACTIONS)
    correction, b = PGTorchLearner._optimal_baseline_correction(
        module, batch, RETURNS, torch.ones(3), TRAJ, 2
    )
    loss = -torch.mean(log_pi * RETURNS) + sum((c * p).sum() for p, c in correction)
    loss.backward()
    c1 = 5.5 - 26.5 / 13
    expected = torch.tensor([[0.0, c1], [0.0, -c1]]) / 3
    torch.testing.assert_close(module.weight.grad, expected)
    torch.testing.assert_close(b, B.reshape(-1))


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_vectorised_sums_match_a_loop_of_backward_passes(env):
    # The default PG module (MLP encoder; Categorical or Gaussian with a free log-std).
    config = PGConfig().environment(env).rl_module(model_config={"fcnet_hiddens": [8]})
    spec = config.get_rl_module_spec(env=gym.make(env))
    module = spec.build()
    rng = np.random.default_rng(0)
    space = gym.make(env).action_space
    space.seed(0)
    n = 12
    obs = torch.as_tensor(rng.normal(size=(n, *spec.observation_space.shape)), dtype=torch.float32)
    actions = torch.as_tensor(np.stack([space.sample() for _ in range(n)]))
    traj = torch.tensor([0] * 5 + [1] * 3 + [2] * 4)
    coef = torch.as_tensor(rng.normal(size=n), dtype=torch.float32)
    sums = per_trajectory_score_sums(module, obs, actions, traj, 3, {"h": coef})["h"]
    dist_cls = module.get_train_action_dist_cls()
    for i in range(3):
        module.zero_grad()
        mask = traj == i
        out = module.forward_train({Columns.OBS: obs[mask]})
        logp = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).logp(actions[mask])
        (logp * coef[mask]).sum().backward()
        for name, p in module.named_parameters():
            torch.testing.assert_close(sums[name][i], p.grad, rtol=1e-4, atol=1e-5)


def test_baselines_keep_the_gradient_unbiased_on_a_bandit():
    # Three-armed bandit, one state s = [1], mean rewards [1, 2, 4] plus N(0, 1) noise.
    # True gradient of J = sum_a pi_a r_a w.r.t. the logits: pi_a (r_a - J).
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    logits = torch.tensor([[0.2], [-0.1], [0.0]])
    module = LinearSoftmaxPolicy(logits)
    pi = torch.softmax(logits[:, 0], 0).numpy()
    means = np.array([1.0, 2.0, 4.0])
    true_grad = pi * (means - pi @ means)

    # Both baselines are estimated from the batch they correct, a bias of order 1/E (E episodes
    # per batch): measured at about 5% of the gradient with E = 20 here. With E = 200 it is
    # well below the Monte-Carlo error of 100 batches, so any other bias would show.
    batches, per_batch = 100, 200
    n = batches * per_batch
    actions = rng.choice(3, size=n, p=pi)
    rewards = means[actions] + rng.normal(size=n)
    sums = per_trajectory_score_sums(
        module, torch.ones(n, 1), torch.as_tensor(actions), torch.arange(n), n,
        {"g": torch.ones(n), "h": torch.as_tensor(rewards, dtype=torch.float32)},
    )
    g = sums["g"]["weight"][:, :, 0].double().numpy().reshape(batches, per_batch, 3)
    h = sums["h"]["weight"][:, :, 0].double().numpy().reshape(batches, per_batch, 3)

    estimates = {"none": h.mean(1)}
    mean_b = []
    for k in range(batches):
        # The driver's "mean" baseline of each batch (one-step episodes: G = r).
        _, _, base, _ = compute_advantages(
            [[r] for r in rewards[k * per_batch:(k + 1) * per_batch]], gamma=1.0,
            baseline="mean", normalize=False,
        )
        mean_b.append(base[0][0])
    estimates["mean"] = h.mean(1) - np.asarray(mean_b)[:, None] * g.mean(1)
    b_opt = optimal_baseline(
        torch.as_tensor(g).transpose(0, 1), torch.as_tensor(h).transpose(0, 1)
    )
    estimates["optimal"] = h.mean(1) - b_opt.numpy() * g.mean(1)

    for name, est in estimates.items():
        se = est.std(0) / np.sqrt(batches)
        # Within 4 standard errors of the true gradient, per logit.
        assert np.all(np.abs(est.mean(0) - true_grad) < 4 * se + 1e-3), (name, est.mean(0))
    # And the baselines do reduce variance here (this is what they are for).
    var = {name: est.var(0).sum() for name, est in estimates.items()}
    assert var["optimal"] <= var["mean"] < var["none"], var
