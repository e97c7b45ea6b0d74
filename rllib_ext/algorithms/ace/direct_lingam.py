"""A vectorised DirectLiNGAM (Shimizu et al. 2011) with the pairwise likelihood-ratio measure of
Hyvärinen & Smith (2013): the ``"fast"`` backend of ACE's causal step (numpy float64).

Same estimator as ``lingam.DirectLiNGAM()`` with its defaults (``measure="pwling"``, no prior
knowledge), computed differently:

* **Causal order** (:func:`causal_order`). At every step, with ``k`` variables left, the score
  of candidate ``i`` is ``M_i = sum_{j != i} min(0, D_ij)^2`` with
  ``D_ij = H(z_j) + H(r_i|j) - H(z_i) - H(r_j|i)``, where ``z`` are the standardised remaining
  variables, ``r_i|j`` the residual of ``z_i`` regressed on ``z_j`` scaled to unit variance,
  and ``H`` the maximum-entropy approximation of differential entropy (log-cosh and
  ``u exp(-u^2/2)`` contrasts). The candidate with the smallest score is the next exogenous
  variable (the first one on a tie); every remaining variable is then replaced by its residual
  on it. lingam evaluates the ``k (k - 1)`` ordered pairs in a Python double loop (computing
  each residual's entropy twice); here all regression coefficients come from one correlation
  matrix and the ``k (k - 1)`` residual entropies from batched numpy passes over blocks of
  pairs, at most ``chunk_elements`` values each (rows of the pair matrix, or ranges of one
  row). No Python loop over pairs.
* **Adjacency** (:func:`adjacency`). For each requested target, adaptive lasso over its
  predecessors in the order, with the same scikit-learn estimators as lingam's
  ``predict_adaptive_lasso``: OLS on the standardised data gives weights ``|beta|``,
  ``LassoLarsIC(criterion="bic")`` on the weighted predictors selects, OLS on the original
  scale gives the coefficients of the selected ones (``coefficients="ols"``, pip lingam's).
  ``coefficients="lasso"`` is instead the older estimator that the ACE reference runs
  (causal-learn's vendored lingam 1.5.4, ``predict_adaptive_lasso``): OLS weights and the
  lasso on the *unstandardised* data, and the *shrunken* lasso coefficients times the weights
  are the result (no refit). ``rows`` restricts the work to some targets (ACE needs only the
  reward's row).

Equivalence with lingam: the same order except where two candidates' scores tie to rounding
(lingam's own float arithmetic decides those), the same adjacency matrix to rounding for the
same order. One known divergence: exactly collinear columns (one an exact multiple of another).
Their residual is zero here, its entropy NaN and, as lingam does with NaN scores, the first
NaN-scored candidate is chosen; in lingam that residual is rounding noise scaled up to unit
variance, so its order there is arbitrary too. (Nearly collinear columns are fine: there the
residual standard deviations are measured on the residuals, as lingam does.) Not supported: prior
knowledge, the "kernel" measure, bootstrap. There is no randomness (lingam's ``random_state``
is unused by its fit too). Data must be finite (unchecked); a constant column makes every score
NaN, in lingam as here.
"""

from __future__ import annotations

import math

import numpy as np

# Maximum-entropy approximation of differential entropy (Hyvärinen 1998), for a unit-variance u:
# H(u) ~ H_gauss - K1 (E[log cosh u] - GAMMA)^2 - K2 (E[u exp(-u^2 / 2)])^2.
_K1 = 79.047
_K2 = 7.4129
_GAMMA = 0.37457
_H_GAUSS = 0.5 * (1.0 + math.log(2.0 * math.pi))
_LOG2 = math.log(2.0)

#: Samples per group in the log-cosh sum: sum_t log(1 + e_t) is taken as the sum over groups
#: of log(prod_t (1 + e_t)), one logarithm per group instead of one log1p per sample (factors
#: lie in (1, 2], so a group's product lies in (1, 2^16]: no overflow, and each group's
#: logarithm is exact to a few ulp, as accurate as the per-sample sum).
_GROUP = 16

#: A pair residual whose variance, derived from the correlation matrix as ``1 - rho^2``, is below
#: this is measured on the residual instead (one extra pass over its block): the derived value
#: has an absolute error of ~1e-14, harmless above this bound, not for nearly collinear pairs.
_MEASURE_VARIANCE_BELOW = 1e-2

#: Default size (float64 elements) of one block of the batched residual-entropy pass; two such
#: work arrays are live at a time (2 x 1 MiB: they stay in cache, which measured faster than
#: larger blocks).
CHUNK_ELEMENTS = 1 << 17


def _as_data(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    return X


def _contrasts(v: np.ndarray, scale: np.ndarray, work: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """Means over the samples of ``log cosh u`` and ``u exp(-u^2 / 2)`` for ``u = scale v``.

    ``v``: (..., m) with ``m`` a multiple of ``_GROUP``, holding ``n`` samples followed by
    zeros (padding); ``scale``: ``v.shape[:-1]``; ``work``: scratch of ``v``'s shape.
    log cosh is evaluated as ``|u| + log(1 + exp(-2|u|)) - log 2`` (cosh itself would overflow
    for |u| > 710), the middle term summed by groups (see ``_GROUP``); a padding zero adds
    exactly log 2 to that sum, removed at the end, and nothing to the other sums. The scale is
    folded into multiplications that are needed anyway instead of a pass of its own.
    """
    m = v.shape[-1]
    scale_ = scale[..., None]
    np.abs(v, out=work)
    sum_abs = work.sum(axis=-1) * scale
    np.multiply(work, -2.0 * scale_, out=work)
    np.exp(work, out=work)
    work += 1.0
    groups = np.multiply.reduce(work.reshape(*v.shape[:-1], _GROUP, m // _GROUP), axis=-2)
    sum_log = np.log(groups, out=groups).sum(axis=-1) - (m - n) * _LOG2
    log_cosh = (sum_abs + sum_log) / n - _LOG2
    np.multiply(v, v, out=work)
    np.multiply(work, -0.5 * scale_ * scale_, out=work)
    np.exp(work, out=work)
    # Row-wise dot products (batched matmul: as fast as numpy 2's vecdot, and in numpy 1).
    gauss = np.matmul(work[..., None, :], v[..., :, None])[..., 0, 0] * scale / n
    return log_cosh, gauss


def _entropy(log_cosh: np.ndarray, gauss: np.ndarray) -> np.ndarray:
    return _H_GAUSS - _K1 * (log_cosh - _GAMMA) ** 2 - _K2 * gauss**2


class _Workspace:
    """Buffers of one :func:`causal_order` call, allocated once and reused by every step (fresh
    per-step arrays cost page faults, ~10% of the run at 24 x 10 000).

    ``zz``: (2p, m) rows ``[z; z]`` of the standardised remaining variables, ``m`` = samples
    rounded up to whole ``_GROUP``s; the padding columns are zero and stay zero. ``scratch``:
    (p, m). ``v`` / ``work``: the blocks of the residual-entropy pass.
    """

    def __init__(self, p: int, n: int, chunk_elements: int):
        self.n = n
        self.m = -(-n // _GROUP) * _GROUP
        self.chunk_elements = chunk_elements
        self.zz = np.zeros((2 * p, self.m))
        self.scratch = np.empty((p, self.m))
        size = min(max(self.m, chunk_elements), max(1, p * (p - 1)) * self.m)
        self.v = np.empty(size)
        self.work = np.empty(size)


def _residual_entropies(k: int, c: np.ndarray, ws: _Workspace) -> np.ndarray:
    """Entropies of all pairwise residuals ``r_ij = z_i - (C_ij / C_jj) z_j`` (i != j) of the
    ``k`` standardised variables in ``ws.zz[:k]``, each scaled to unit variance.

    ``c``: (k, k) second moments ``C = z z^T / n``. Returns ``H`` (k, k) with
    ``H[i, j] = H(r_ij / std(r_ij))`` and a zero diagonal. ``std(r_ij)`` comes from ``C``
    (``C_ii - C_ij^2 / C_jj`` less the squared mean), or is measured on the residual as lingam
    does where that is small (nearly collinear pairs; see ``_MEASURE_VARIANCE_BELOW``).

    Layout: the off-diagonal pairs of row ``i`` are ``j = (i + o) mod k`` for ``o = 1..k-1``,
    i.e. the contiguous rows ``i+1 .. i+k-1`` of ``zz = [z; z]``, so a block of rows ``i`` and
    offsets ``o`` is a strided view of ``zz`` (no copy, no wasted diagonal). Blocks hold at most
    ``chunk_elements`` values (at least one pair), several rows of the pair matrix when a whole
    row fits, else a range of offsets of one row.
    """
    n, m = ws.n, ws.m
    out = np.zeros((k, k))
    if k < 2:
        return out
    z, zz = ws.zz[:k], ws.zz
    rows_idx = np.arange(k)[:, None]
    cols_idx = (rows_idx + np.arange(1, k)[None, :]) % k  # (k, k-1): j for (i, o)
    c_ij = c[rows_idx, cols_idx]
    coef_o = c_ij / np.diag(c)[cols_idx]
    square_o = np.diag(c)[:, None] - coef_o * c_ij  # residual second moments, derived
    z_mean = z.sum(axis=1) / n  # zero up to rounding; kept so that std(r) is lingam's
    mean_o = z_mean[:, None] - coef_o * z_mean[cols_idx]  # residual means
    h_o = np.empty((k, k - 1))
    per_row = k - 1
    rows = max(1, min(k, ws.chunk_elements // (per_row * m)))
    offsets = per_row if rows > 1 else max(1, min(per_row, ws.chunk_elements // m))
    strides = (zz.strides[0], zz.strides[0], zz.strides[1])
    for i0 in range(0, k, rows):
        i1 = min(k, i0 + rows)
        for o0 in range(0, per_row, offsets):
            o1 = min(per_row, o0 + offsets)
            shape = (i1 - i0, o1 - o0, m)
            if i1 - i0 == 1:
                zj = zz[None, i0 + 1 + o0:i0 + 1 + o1]
            else:
                zj = np.lib.stride_tricks.as_strided(zz[i0 + 1 + o0:], shape, strides,
                                                     writeable=False)
            size = shape[0] * shape[1] * m
            v, work = ws.v[:size].reshape(shape), ws.work[:size].reshape(shape)
            np.multiply(coef_o[i0:i1, o0:o1, None], zj, out=v)
            np.subtract(z[i0:i1, None, :], v, out=v)
            square = square_o[i0:i1, o0:o1]
            measure = square < _MEASURE_VARIANCE_BELOW
            if measure.any():
                measured = np.matmul(v[..., None, :], v[..., :, None])[..., 0, 0] / n
                square = np.where(measure, measured, square)
            inv_std = 1.0 / np.sqrt(square - mean_o[i0:i1, o0:o1] ** 2)
            h_o[i0:i1, o0:o1] = _entropy(*_contrasts(v, inv_std, work, n))
    out[rows_idx, cols_idx] = h_o
    return out


def _next_exogenous(x: np.ndarray, ws: _Workspace) -> int:
    """Index (row of ``x``, (k, n)) of the most exogenous variable by the pwling measure."""
    k, n = x.shape
    z = ws.zz[:k]
    np.subtract(x, x.mean(axis=1, keepdims=True), out=z[:, :n])
    z[:, :n] /= np.sqrt(np.einsum("ij,ij->i", z, z) / n)[:, None]
    ws.zz[k:2 * k] = z
    # Second moments of the standardised variables (means are zero up to rounding): C_ij / C_jj
    # is the coefficient of z_i regressed on z_j (lingam: cov(z_i, z_j) / var(z_j)).
    c = (z @ z.T) / n
    h_z = _entropy(*_contrasts(z, np.ones(k), ws.scratch[:k], n))
    h_r = _residual_entropies(k, c, ws)
    d = (h_z[None, :] + h_r) - (h_z[:, None] + h_r.T)
    np.fill_diagonal(d, 0.0)
    score = (np.minimum(0.0, d) ** 2).sum(axis=1)
    # argmax of -score: the first minimum, or the first NaN score (lingam's tie/NaN behaviour).
    return int(np.argmax(-score))


def causal_order(X, *, chunk_elements: int = CHUNK_ELEMENTS) -> list[int]:
    """DirectLiNGAM causal order of the columns of ``X``, root first.

    Args:
        X: (n_samples, n_features) finite data.
        chunk_elements: Size in float64 values of one block of the batched residual-entropy
            pass (a block holds at least one pair, n_samples values). Memory: about
            4 x 8 x n_features x n_samples bytes of data copies plus 2 x 8 x chunk_elements
            (about 40 MB at 120 x 10 000 with the default).

    Returns:
        A permutation of ``range(n_features)``, equal to ``lingam.DirectLiNGAM().fit(X)
        .causal_order_`` (see the module docstring for ties and collinear columns).
    """
    x = np.array(_as_data(X).T, order="C")  # (p, n): one variable per contiguous row
    p, n = x.shape
    ws = _Workspace(p, n, chunk_elements)
    remaining = list(range(p))
    order = []
    while len(remaining) > 1:
        k = len(remaining)
        m = _next_exogenous(x[:k], ws)
        order.append(remaining.pop(m))
        # Every other variable becomes its residual on x_m: x_i - cov(x_i, x_m) / var(x_m) x_m.
        xm = x[m].copy()
        for row in range(m, k - 1):  # drop row m, keeping the others' order (no reallocation)
            x[row] = x[row + 1]
        rest = x[:k - 1]
        xm_c = xm - xm.mean()
        # sum_t (x_it - mean_i) xm_c_t, without a centred copy of x.
        cov = rest @ xm_c - rest.mean(axis=1) * xm_c.sum()
        update = ws.scratch[:k - 1, :n]
        np.multiply((cov / (xm_c @ xm_c))[:, None], xm[None, :], out=update)
        rest -= update
    order.extend(remaining)
    return order


def _check_order(order, p: int) -> list[int]:
    order = [int(v) for v in order]
    if sorted(order) != list(range(p)):
        raise ValueError(f"order must be a permutation of range({p}); got {order}.")
    return order


def _shrunken_adaptive_lasso(x: np.ndarray, predictors: np.ndarray, target: int) -> np.ndarray:
    """Coefficients of ``x[:, target]`` on ``x[:, predictors]`` as causal-learn's vendored
    lingam 1.5.4 (the ACE reference's) computes them: weights ``|beta_OLS|`` and
    ``LassoLarsIC(criterion="bic")`` on the raw data; the lasso's coefficients times the
    weights, with the lasso's shrinkage kept."""
    from sklearn.linear_model import LassoLarsIC, LinearRegression  # (lazy: heavy)

    design, response = x[:, predictors], x[:, target]
    weight = np.abs(LinearRegression().fit(design, response).coef_)
    lasso = LassoLarsIC(criterion="bic").fit(design * weight, response)
    return lasso.coef_ * weight


def _adaptive_lasso(x: np.ndarray, x_std: np.ndarray, predictors: np.ndarray,
                    target: int) -> np.ndarray:
    """Coefficients of ``x[:, target]`` on ``x[:, predictors]``: adaptive-lasso selection (BIC)
    on the standardised data, then OLS of the selected predictors on the original scale."""
    from sklearn.linear_model import LassoLarsIC, LinearRegression  # (lazy: heavy)

    design, response = x_std[:, predictors], x_std[:, target]
    weight = np.abs(LinearRegression().fit(design, response).coef_)
    lasso = LassoLarsIC(criterion="bic").fit(design * weight, response)
    selected = np.abs(lasso.coef_ * weight) > 0.0
    coef = np.zeros(len(predictors))
    if selected.any():
        ols = LinearRegression().fit(x[:, predictors[selected]], x[:, target])
        coef[selected] = ols.coef_
    return coef


#: ``coefficients`` values of :func:`adjacency`: "ols" = pip lingam's (lasso selection, OLS
#: refit), "lasso" = the ACE reference's vendored lingam 1.5.4 (shrunken lasso coefficients).
COEFFICIENTS = ("ols", "lasso")


def adjacency(X, order, rows=None, *, coefficients: str = "ols") -> np.ndarray:
    """DirectLiNGAM adjacency matrix ``B`` (``B[i, j]`` = direct effect x_j -> x_i) for a causal
    order.

    Args:
        X: (n_samples, n_features) finite data; needs ``n_samples > n_features`` (BIC's noise
            variance estimate in ``LassoLarsIC``), as lingam.
        order: A permutation of ``range(n_features)``, root first (e.g. :func:`causal_order`).
        rows: Target variables whose row of ``B`` to estimate (each one adaptive-lasso fit on
            its predecessors in ``order``); None = all. Other rows are left 0.
        coefficients: One of :data:`COEFFICIENTS`: "ols" (pip lingam's estimator) or "lasso"
            (the ACE reference's: shrunken, on the unstandardised data).

    Returns:
        (n_features, n_features) float64 ``B``; with ``rows=None`` and "ols" it equals
        lingam's ``adjacency_matrix_`` for the same order (the same scikit-learn estimators on
        the same inputs; the standardisation is recomputed here and may differ from lingam's
        ``StandardScaler`` in the last bits, which can only matter for an exact BIC tie).
    """
    if coefficients not in COEFFICIENTS:
        raise ValueError(f"coefficients={coefficients!r} is not one of {list(COEFFICIENTS)}.")
    x = _as_data(X)
    p = x.shape[1]
    order = _check_order(order, p)
    position = {v: k for k, v in enumerate(order)}
    targets = order if rows is None else [int(t) for t in rows]
    for t in targets:
        if t not in position:
            raise ValueError(f"rows holds {t}, not a variable index in range({p}).")
    std = x.std(axis=0)
    std[std == 0.0] = 1.0  # as StandardScaler: a constant column is only centred
    x_std = (x - x.mean(axis=0)) / std
    b = np.zeros((p, p))
    for t in dict.fromkeys(targets):
        predictors = np.asarray(order[: position[t]], dtype=np.intp)
        if not len(predictors):
            continue
        b[t, predictors] = (_shrunken_adaptive_lasso(x, predictors, t) if coefficients == "lasso"
                            else _adaptive_lasso(x, x_std, predictors, t))
    return b


def fit(X, rows=None, *, coefficients: str = "ols",
        chunk_elements: int = CHUNK_ELEMENTS) -> tuple[list[int], np.ndarray]:
    """DirectLiNGAM on ``X``: ``(causal_order(X), adjacency(X, order, rows))``.

    The equivalent of ``m = lingam.DirectLiNGAM().fit(X); (m.causal_order_,
    m.adjacency_matrix_)``, with ``rows`` to estimate only some rows of ``B`` (ACE needs the
    reward's) and ``coefficients`` as :func:`adjacency`.

    Returns:
        ``order`` (list of n_features ints, root first) and ``B`` ((n_features, n_features)
        float64, ``B[i, j]`` = direct effect x_j -> x_i; rows not in ``rows`` are 0).
    """
    x = _as_data(X)
    order = causal_order(x, chunk_elements=chunk_elements)
    return order, adjacency(x, order, rows, coefficients=coefficients)
