"""Importance weights and per-decision coefficients, against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_ext.algorithms.pg.importance_sampling import (
    importance_coefficients,
    importance_weights,
    weight_statistics,
)

# Two episodes: A with ratios rho = [2, 3], B with rho = [0.5].
LOG_RATIOS = np.log([2.0, 3.0, 0.5])
LENGTHS = [2, 1]


@pytest.mark.parametrize(
    "mode, clip, expected",
    [
        # Full product per episode: A -> 2 * 3 = 6 at both steps, B -> 0.5.
        ("trajectory", None, [6.0, 6.0, 0.5]),
        # Causal products: W_0 = 2, W_1 = 2 * 3 = 6; B: 0.5.
        ("per_decision", None, [2.0, 6.0, 0.5]),
        # The step's own ratio only.
        ("per_step", None, [2.0, 3.0, 0.5]),
        # Truncation at 4 acts on the weight, after the product.
        ("trajectory", 4.0, [4.0, 4.0, 0.5]),
        ("per_decision", 4.0, [2.0, 4.0, 0.5]),
        ("per_step", 2.5, [2.0, 2.5, 0.5]),
        # Truncation below 1 caps even the ratio-1 part: min(rho, 1) (Retrace-style c).
        ("per_step", 1.0, [1.0, 1.0, 0.5]),
    ],
)
def test_weights_by_hand(mode, clip, expected):
    w = importance_weights(LOG_RATIOS, LENGTHS, mode, clip=clip)
    np.testing.assert_allclose(w, expected)


def test_self_normalised_weights_have_unit_mean():
    # per_step: [2, 3, .5] / (5.5 / 3) = [12/11, 18/11, 3/11].
    w = importance_weights(LOG_RATIOS, LENGTHS, "per_step", self_normalize=True)
    np.testing.assert_allclose(w, [12 / 11, 18 / 11, 3 / 11])
    # Truncation comes first: trajectory clipped to [4, 4, .5], mean 8.5/3.
    w = importance_weights(LOG_RATIOS, LENGTHS, "trajectory", clip=4.0, self_normalize=True)
    np.testing.assert_allclose(w, np.array([4, 4, 0.5]) * 3 / 8.5)


@pytest.mark.parametrize("mode", ["trajectory", "per_decision", "per_step"])
def test_fresh_data_has_weight_exactly_one(mode):
    # Behaviour policy == current policy: log ratios are 0 and every weight is exactly 1.
    w = importance_weights(np.zeros(7), [3, 4], mode)
    assert np.array_equal(w, np.ones(7))


def test_huge_products_stay_finite():
    # 1000 steps of ratio 2: the product 2^1000 overflows float64; the guard caps it at e^30.
    w = importance_weights(np.full(1000, np.log(2.0)), [1000], "per_decision")
    assert np.isfinite(w).all() and w.max() == pytest.approx(np.exp(30.0))


def test_per_decision_coefficients_by_hand():
    # W = [2, 6 | 0.5], rewards [1, 1 | 1], baselines .5 everywhere, gamma .5.
    #   A, t=1: 1 * 6 - .5 * 6 = 3
    #   A, t=0: 1 * 2 + .5 * (1 * 6) - .5 * 2 = 4
    #   B, t=0: 1 * .5 - .5 * .5 = .25
    w = np.array([2.0, 6.0, 0.5])
    c = importance_coefficients(
        w, LENGTHS, "per_decision", advantages=np.zeros(3), rewards=np.ones(3),
        baselines=np.full(3, 0.5), gamma=0.5,
    )
    np.testing.assert_allclose(c, [4.0, 3.0, 0.25])


@pytest.mark.parametrize("mode", ["trajectory", "per_step"])
def test_other_modes_scale_the_advantage(mode):
    c = importance_coefficients(
        np.array([2.0, 6.0, 0.5]), LENGTHS, mode, advantages=np.array([1.0, -2.0, 4.0]),
        rewards=np.ones(3), baselines=np.zeros(3), gamma=0.9,
    )
    np.testing.assert_allclose(c, [2.0, -12.0, 2.0])


def test_per_decision_with_unit_weights_is_the_advantage():
    # With all W = 1 the per-decision form reduces to G_t - b_t (driver's advantage).
    from rllib_ext.algorithms.pg.advantages import compute_advantages

    rewards = [[1.0, 0.0, 2.0], [3.0, 1.0]]
    adv, rtg, base, scale = compute_advantages(
        rewards, gamma=0.9, baseline="time_mean", normalize=True
    )
    adv, rtg = np.concatenate(adv), np.concatenate(rtg)
    c = importance_coefficients(
        np.ones(5), [3, 2], "per_decision", advantages=adv,
        rewards=np.concatenate(rewards) / scale, baselines=rtg / scale - adv, gamma=0.9,
    )
    np.testing.assert_allclose(c, adv, atol=1e-12)


def test_weight_statistics_by_hand():
    # w = [1, 1, 2]: mean 4/3, max 2, ESS = 4^2 / (1 + 1 + 4) = 8/3.
    stats = weight_statistics(np.array([1.0, 1.0, 2.0]))
    assert stats == pytest.approx({"mean": 4 / 3, "max": 2.0, "ess": 8 / 3})


def test_per_decision_is_unbiased_on_a_two_step_chain():
    # Two steps, two actions each, reward 1 for action 1 at each step (independent of state):
    # J(pi) = sum_t pi(1) with gamma 1. Estimating E_pi[W_t-weighted returns] from mu samples:
    # the per-decision coefficient at t=0 with baseline 0 is r_0 W_0 + r_1 W_1, whose mu-mean
    # is the expected return under pi.
    rng = np.random.default_rng(0)
    mu, pi = np.array([0.5, 0.5]), np.array([0.2, 0.8])
    n = 20_000
    actions = rng.integers(0, 2, size=(n, 2))
    log_ratios = np.log(pi[actions] / mu[actions]).reshape(-1)
    rewards = (actions == 1).astype(float).reshape(-1)
    w = importance_weights(log_ratios, [2] * n, "per_decision")
    c = importance_coefficients(
        w, [2] * n, "per_decision", advantages=np.zeros(2 * n), rewards=rewards,
        baselines=np.zeros(2 * n), gamma=1.0,
    )
    first_steps = c[0::2]
    se = first_steps.std() / np.sqrt(n)
    assert abs(first_steps.mean() - 1.6) < 4 * se


def test_rejects_unknown_mode_and_bad_lengths():
    with pytest.raises(ValueError, match="per_decision"):
        importance_weights(LOG_RATIOS, LENGTHS, "weighted")
    with pytest.raises(ValueError, match="sum to 2"):
        importance_weights(LOG_RATIOS, [1, 1], "per_step")
