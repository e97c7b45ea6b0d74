"""The vectorised DirectLiNGAM (``direct_lingam``) against pip lingam, on known structures, and
as the "fast" backend of ``fit_causal_weights``. No Ray."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_ext.algorithms.ace import direct_lingam
from rllib_ext.algorithms.ace.causal import BACKENDS, fit_causal_weights
from rllib_ext.envs.causal_reach import CausalReachEnv


def _lingam_data(p: int, n: int, seed: int, density: float = 0.4):
    """x = B x + e with uniform (non-Gaussian) e and a random DAG over a random permutation.

    Returns X (n, p), the permutation (a valid causal order) and the true B.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(p)
    b = np.zeros((p, p))
    for later in range(p):
        for earlier in range(later):
            if rng.random() < density:
                b[perm[later], perm[earlier]] = rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0])
    noise = rng.uniform(-1.0, 1.0, (n, p)) * rng.uniform(0.5, 2.0, p)
    x = np.zeros((n, p))
    for v in perm:
        x[:, v] = x @ b[v] + noise[:, v]
    return x, [int(v) for v in perm], b


def _respects(order, b) -> bool:
    """Every edge j -> i of b (b[i, j] != 0) goes forward in ``order``."""
    position = {v: k for k, v in enumerate(order)}
    return all(position[j] < position[i] for i, j in zip(*np.nonzero(b), strict=True))


@pytest.mark.parametrize("p, n, seed", [
    (5, 2000, 0), (5, 3000, 1), (8, 2000, 2), (8, 4000, 3), (12, 3000, 4), (12, 5000, 5),
])
def test_order_and_adjacency_equal_lingam(p, n, seed):
    import lingam

    x, _, b_true = _lingam_data(p, n, seed)
    reference = lingam.DirectLiNGAM().fit(x)
    order, b = direct_lingam.fit(x)
    assert order == reference.causal_order_
    np.testing.assert_allclose(b, reference.adjacency_matrix_, rtol=0, atol=1e-6)
    # The estimator itself is sound on this data: a valid order, coefficients near the truth.
    assert _respects(order, b_true)
    np.testing.assert_allclose(b, b_true, atol=0.2)


@pytest.mark.parametrize("seed", range(4))
def test_order_recovers_a_unique_true_order(seed):
    """A complete DAG (every earlier variable causes every later one) has exactly one causal
    order; a wrong measure (e.g. a sign error in the entropy difference) reverses it."""
    x, perm, b_true = _lingam_data(8, 3000, seed, density=1.0)
    x /= x.std(axis=0)  # equal scales: nothing to read off the variances
    assert np.count_nonzero(b_true) == 8 * 7 // 2
    assert direct_lingam.causal_order(x) == perm


def test_two_variables_by_hand():
    """x -> y, y = 0.8 x + e, uniform x and e: x comes first wherever its column is, and the
    only coefficient is close to 0.8."""
    rng = np.random.default_rng(0)
    cause = rng.uniform(-1.0, 1.0, 5000)
    effect = 0.8 * cause + rng.uniform(-0.5, 0.5, 5000)
    order, b = direct_lingam.fit(np.column_stack([cause, effect]))
    assert order == [0, 1]
    assert b[1, 0] == pytest.approx(0.8, abs=0.02) and b[0, 0] == b[0, 1] == b[1, 1] == 0.0
    # Exactly OLS of y on x (the adaptive lasso keeps the predictor, then refits unshrunk).
    slope = np.cov(cause, effect, bias=True)[0, 1] / cause.var()
    assert b[1, 0] == pytest.approx(slope, rel=1e-10)
    order, b = direct_lingam.fit(np.column_stack([effect, cause]))
    assert order == [1, 0]
    assert b[0, 1] == pytest.approx(0.8, abs=0.02)


def test_lasso_coefficients_are_the_references_shrunken_ones():
    """``coefficients="lasso"``: the ACE reference's vendored lingam 1.5.4
    ``predict_adaptive_lasso``, written out here: weights |OLS slope| on the raw data,
    LassoLarsIC(bic) on the weighted raw predictors, coefficients x weights (no refit). They
    differ from the OLS refit and are shrunk towards 0; a predictor the lasso drops is 0 in
    both."""
    from sklearn.linear_model import LassoLarsIC, LinearRegression

    rng = np.random.default_rng(3)
    n = 400  # few samples: the BIC keeps visible shrinkage
    x0 = rng.uniform(-1.0, 1.0, n)
    x1 = rng.uniform(-1.0, 1.0, n)  # independent of the target: pruned
    y = 0.3 * x0 + rng.uniform(-1.0, 1.0, n)
    x = np.column_stack([x0, x1, 10.0 * y])  # unstandardised target scale on purpose
    order = [0, 1, 2]
    lasso = direct_lingam.adjacency(x, order, rows=[2], coefficients="lasso")[2, :2]
    ols = direct_lingam.adjacency(x, order, rows=[2], coefficients="ols")[2, :2]
    weight = np.abs(LinearRegression().fit(x[:, :2], x[:, 2]).coef_)
    expected = LassoLarsIC(criterion="bic").fit(x[:, :2] * weight, x[:, 2]).coef_ * weight
    np.testing.assert_allclose(lasso, expected, rtol=1e-12)
    assert lasso[1] == ols[1] == 0.0
    assert 0.0 < lasso[0] < ols[0] and lasso[0] != pytest.approx(ols[0], rel=1e-3)
    with pytest.raises(ValueError, match=r"coefficients='ridge'.*\['ols', 'lasso'\]"):
        direct_lingam.adjacency(x, order, coefficients="ridge")


def test_rows_estimate_only_the_requested_rows():
    x, _, _ = _lingam_data(8, 3000, 7)
    order, full = direct_lingam.fit(x)
    sink = order[-1]
    partial = direct_lingam.adjacency(x, order, rows=[sink, order[3]])
    np.testing.assert_array_equal(partial[[sink, order[3]]], full[[sink, order[3]]])
    mask = np.ones(8, bool)
    mask[[sink, order[3]]] = False
    assert not partial[mask].any()
    # The root has no predecessors: its row is zero.
    assert not direct_lingam.adjacency(x, order, rows=[order[0]]).any()


@pytest.mark.parametrize("chunk_elements", [1, 3 * 2000, 20_000, 1 << 30])
def test_block_layout_does_not_change_the_result(chunk_elements):
    """Single pairs, a row split into offset ranges, several rows per block, everything at
    once: the same causal order."""
    x, _, _ = _lingam_data(6, 2000, 8)
    assert (direct_lingam.causal_order(x, chunk_elements=chunk_elements)
            == direct_lingam.causal_order(x))


def test_log_cosh_contrast_is_stable_and_exact():
    u = np.linspace(-30.0, 30.0, 1001)
    padded = np.zeros((1, 1008))  # whole groups of 16, zero padding
    padded[0, :1001] = u
    log_cosh, gauss = direct_lingam._contrasts(padded, np.ones(1), np.empty_like(padded), 1001)
    assert log_cosh[0] == pytest.approx(np.mean(np.log(np.cosh(u))), rel=1e-13)
    assert gauss[0] == pytest.approx(np.mean(u * np.exp(-u**2 / 2)), abs=1e-15)
    # cosh(1000) overflows; the stable form gives |u| - log 2, scaled inputs included.
    big = np.full((1, 16), 500.0)
    log_cosh, gauss = direct_lingam._contrasts(big, np.array([2.0]), np.empty_like(big), 16)
    assert log_cosh[0] == pytest.approx(1000.0 - np.log(2.0)) and gauss[0] == 0.0


def test_nearly_collinear_columns_as_lingam():
    """A column that is another plus 1e-9 noise: the residual's standard deviation is measured,
    not derived from the correlation (1 - rho^2 would cancel to rounding noise)."""
    import lingam

    x, _, _ = _lingam_data(5, 2000, 0)
    x[:, 3] = x[:, 1] + 1e-9 * np.random.default_rng(0).uniform(-1.0, 1.0, 2000)
    reference = lingam.DirectLiNGAM().fit(x)
    order, b = direct_lingam.fit(x)
    assert order == reference.causal_order_
    np.testing.assert_allclose(b, reference.adjacency_matrix_, rtol=0, atol=1e-6)


def test_bad_arguments_raise():
    x, _, _ = _lingam_data(3, 100, 0)
    with pytest.raises(ValueError, match="2-D"):
        direct_lingam.causal_order(x[:, 0])
    with pytest.raises(ValueError, match="permutation"):
        direct_lingam.adjacency(x, [0, 0, 1])
    with pytest.raises(ValueError, match="rows"):
        direct_lingam.adjacency(x, [0, 1, 2], rows=[3])


def _causal_reach_data(steps: int = 3000, seed: int = 0):
    """[s, a, r] from CausalReach under uniform random actions (13 variables)."""
    env = CausalReachEnv()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    s, a, r = [], [], []
    for _ in range(steps):
        action = rng.uniform(-1.0, 1.0, env.action_space.shape)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        s.append(obs)
        a.append(action)
        r.append(reward)
        obs = env.reset()[0] if terminated or truncated else next_obs
    return np.array(s), np.array(a), np.array(r)


def _synthetic_sar(n: int = 4000, seed: int = 1):
    """12 states, 5 actions; r depends on a_0, a_1, a_3 and s_0; actions partly follow states."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1.0, 1.0, (n, 12))
    a = rng.uniform(-1.0, 1.0, (n, 5)) + 0.3 * s[:, :5]
    r = a @ np.array([1.0, 0.5, 0.0, -0.3, 0.0]) + 0.2 * s[:, 0] + rng.uniform(-0.5, 0.5, n)
    return s, a, r


@pytest.mark.parametrize("make, transform", [
    (_causal_reach_data, "softmax"), (_synthetic_sar, "softmax_abs"),
])
def test_fast_backend_gives_lingam_weights(make, transform):
    s, a, r = make()
    fast = fit_causal_weights(s, a, r, transform=transform, backend="fast")
    slow = fit_causal_weights(s, a, r, transform=transform, backend="lingam")
    assert fast.fallback is None and slow.fallback is None
    np.testing.assert_allclose(fast.effects, slow.effects, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.weights, slow.weights, rtol=0, atol=1e-6)
    assert fast.weights.sum() == pytest.approx(a.shape[1])


def test_causal_reach_effects_rank_like_the_influence():
    s, a, r = _causal_reach_data()
    fit = fit_causal_weights(s, a, r)  # the default backend is "fast"
    influence = np.asarray(CausalReachEnv().influence)
    assert np.argmax(fit.effects) == 0
    assert fit.effects[0] > fit.effects[1] > fit.effects[2] > 0.0
    assert np.abs(fit.effects[influence == 0]).max() < 0.05


def test_unknown_backend_raises_naming_it():
    s, a, r = _synthetic_sar(n=200)
    assert BACKENDS == ("fast", "lingam")
    with pytest.raises(ValueError, match=r"backend='culingam'.*\['fast', 'lingam'\]"):
        fit_causal_weights(s, a, r, backend="culingam")
