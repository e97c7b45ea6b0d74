"""ACE's causal step: per-action-dimension weights from a DirectLiNGAM fit on ``[s, a, r]``.

:func:`compute_causal_weights` is the pure function (numpy in, numpy out);
:func:`fit_causal_weights` returns the same weights with the diagnostics ACE reports (fit time,
why a fit fell back to uniform weights, which columns were dropped); the Ray actor that runs the
fit off the training loop is :class:`~.causal_state.CausalWorker`.

What the reference (``utilis/causal_weight.py::get_sa2r_weight``) computes: fit DirectLiNGAM on
the columns ``[s_0..s_{S-1}, a_0..a_{A-1}, r]``, read the reward row of the adjacency matrix
``B[r, a_i]`` (the estimated direct effect a_i -> r), and map it to weights
``w = A * softmax(B[r, a])`` (signed coefficients, no temperature), so ``sum(w) = A``.

Backends (:data:`BACKENDS`, the ``backend`` option): ``"fast"`` (default) is this project's
vectorised DirectLiNGAM (:mod:`rllib_ext.algorithms.ace.direct_lingam`: the same estimator as
``lingam.DirectLiNGAM()``, its causal order and coefficients equal to rounding; it estimates
only the reward row of ``B`` and is much faster, see ``benchmarks/causal_fit.py`` and
benchmarks/RESULTS.md); ``"lingam"`` is pip ``lingam.DirectLiNGAM`` itself.

Coefficients (:data:`COEFFICIENTS`, the ``coefficients`` option): the reference runs
causal-learn's older vendored lingam (1.5.4), whose adjacency step returns the *shrunken*
adaptive-lasso coefficients fitted on the unstandardised data (``"lasso"``, the default, as the
reference); pip lingam refits the selected predictors by OLS (``"ols"``), which gives larger,
more spread coefficients for the same data and so more spread weights. With the "lingam"
backend and "lasso", lingam's causal order is kept and the reward row re-estimated the
reference's way.

Robustness rules (the reference has none, see its issue #2):

* non-finite values anywhere, zero reward variance, ``n <= number of variables`` after column
  dropping, a fit that raises or an adjacency row with NaN -> uniform ones, a
  :class:`CausalWeightsWarning`, and ``fallback`` set to the reason;
* constant or near-constant columns (std <= ``min_std`` x (1 + |mean|)) are dropped before the
  fit: DirectLiNGAM's pairwise scores turn NaN on them, which silently collapses its causal
  order to column order. A dropped action column gets coefficient 0 (the same value the
  reference's adaptive lasso gives a pruned action).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from rllib_ext.algorithms.ace.direct_lingam import COEFFICIENTS

#: ``causal_weight_transform`` values. "softmax": the reference, ``A * softmax(B[r, a])`` on the
#: signed coefficients (a strongly negative effect gets a small weight). "softmax_abs":
#: ``A * softmax(|B[r, a]|)``, effect magnitude regardless of sign.
TRANSFORMS = ("softmax", "softmax_abs")

#: ``backend`` values of :func:`fit_causal_weights`: "fast" = :mod:`.direct_lingam` (vectorised,
#: reward row only), "lingam" = ``lingam.DirectLiNGAM`` (imported only when chosen).
BACKENDS = ("fast", "lingam")

# Fallback reasons (the ``fallback`` field of :class:`CausalFit`).
NON_FINITE = "non_finite_data"
CONSTANT_REWARD = "constant_reward"
TOO_FEW_SAMPLES = "too_few_samples"
FIT_FAILED = "fit_failed"
NON_FINITE_EFFECTS = "non_finite_effects"


class CausalWeightsWarning(RuntimeWarning):
    """A causal fit fell back to uniform weights (ACE then behaves like SAC until the next fit)."""


@dataclasses.dataclass
class CausalFit:
    """Outcome of one causal fit.

    Attributes:
        weights: (A,) float64 weights, all finite, positive, summing to A.
        effects: (A,) estimated direct effects a_i -> r (zeros on a fallback or dropped column).
        fallback: None if the fit was used, else the reason the weights are uniform.
        fit_seconds: Wall time of the computation (DirectLiNGAM dominates), without the
            one-off import of the backend (``import lingam`` or of the fast module and
            scikit-learn).
        dropped_columns: Indices into ``[s, a, r]`` dropped as (near-)constant.
        num_samples: Rows used.
    """

    weights: np.ndarray
    effects: np.ndarray
    fallback: str | None
    fit_seconds: float
    dropped_columns: list[int]
    num_samples: int


def weights_from_effects(effects: np.ndarray, transform: str = "softmax") -> np.ndarray:
    """``A * softmax(effects)`` (or of ``|effects|``), max-subtracted so it never overflows."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform={transform!r} is not one of {list(TRANSFORMS)}.")
    x = np.abs(effects) if transform == "softmax_abs" else np.asarray(effects, dtype=np.float64)
    z = np.exp(x - x.max())
    return len(x) * z / z.sum()


def fit_causal_weights(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    *,
    transform: str = "softmax",
    min_std: float = 1e-6,
    random_state: int | None = None,
    backend: str = "fast",
    coefficients: str = "lasso",
) -> CausalFit:
    """Causal weights of the action dimensions with diagnostics; never raises on bad data.

    Args:
        obs: (n, S) observations s_t (flattened).
        actions: (n, A) actions a_t, in the units the learner uses (normalised [-1, 1] for
            RLlib's SAC module).
        rewards: (n,) rewards r_t.
        transform: How effects become weights, one of :data:`TRANSFORMS`.
        min_std: A column with std <= min_std x (1 + |mean|) counts as constant and is dropped.
        random_state: Passed to ``lingam.DirectLiNGAM`` (whose fit does not use it); the
            "fast" backend is deterministic and ignores it.
        backend: DirectLiNGAM implementation, one of :data:`BACKENDS`: "fast" (vectorised, only
            the reward row of the adjacency matrix is estimated) or "lingam" (pip lingam).
        coefficients: The reward row's estimator, one of :data:`COEFFICIENTS`: "lasso" (the
            reference's shrunken adaptive-lasso coefficients) or "ols" (pip lingam's refit).

    Raises:
        ValueError: Only for caller errors: mismatched row counts, no action dimension, an
            unknown transform, backend or coefficients.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {list(BACKENDS)}.")
    if coefficients not in COEFFICIENTS:
        raise ValueError(f"coefficients={coefficients!r} is not one of {list(COEFFICIENTS)}.")
    # One-off imports (lingam: ~2 s; scikit-learn's, which direct_lingam defers), kept out of
    # the fit time.
    import sklearn.linear_model  # noqa: F401

    from rllib_ext.algorithms.ace import direct_lingam

    if backend == "lingam":
        import lingam

    start = time.perf_counter()
    obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
    actions = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    n, num_s, num_a = len(obs), obs.shape[1], actions.shape[1]
    if not (len(actions) == n == len(rewards)):
        raise ValueError(
            f"obs, actions and rewards need the same number of rows; got {n}, {len(actions)}, "
            f"{len(rewards)}."
        )
    if num_a == 0:
        raise ValueError("actions has no columns; ACE needs at least one action dimension.")
    if transform not in TRANSFORMS:
        raise ValueError(f"transform={transform!r} is not one of {list(TRANSFORMS)}.")

    effects = np.zeros(num_a)

    def done(fallback=None, dropped=()):
        weights = np.ones(num_a) if fallback else weights_from_effects(effects, transform)
        return CausalFit(weights, effects if not fallback else np.zeros(num_a), fallback,
                         time.perf_counter() - start, list(dropped), n)

    data = np.hstack([obs, actions, rewards[:, None]])
    if not np.isfinite(data).all():
        return done(NON_FINITE)
    std, mean = data.std(axis=0), data.mean(axis=0)
    constant = std <= min_std * (1.0 + np.abs(mean))
    if constant[-1]:
        return done(CONSTANT_REWARD)
    keep = np.flatnonzero(~constant)
    dropped = np.flatnonzero(constant).tolist()
    if n <= len(keep):
        return done(TOO_FEW_SAMPLES, dropped)
    try:
        with warnings.catch_warnings():
            # Remaining numerical warnings of the order search are handled by the NaN check.
            warnings.simplefilter("ignore", RuntimeWarning)
            reward = [len(keep) - 1]
            if backend == "lingam":
                model = lingam.DirectLiNGAM(random_state=random_state).fit(data[:, keep])
                reward_row = model.adjacency_matrix_[-1] if coefficients == "ols" else \
                    direct_lingam.adjacency(data[:, keep], model.causal_order_, reward,
                                            coefficients=coefficients)[-1]
            else:
                _, b = direct_lingam.fit(data[:, keep], rows=reward, coefficients=coefficients)
                reward_row = b[-1]
    except Exception:  # noqa: BLE001 - any failure of the fit means "no causal information"
        return done(FIT_FAILED, dropped)
    # Map the kept columns' coefficients back to action dimensions; dropped actions stay 0.
    for j, col in enumerate(keep[:-1]):
        if num_s <= col < num_s + num_a:
            effects[col - num_s] = reward_row[j]
    if not np.isfinite(effects).all():
        effects[:] = 0.0
        return done(NON_FINITE_EFFECTS, dropped)
    return done(None, dropped)


def compute_causal_weights(obs, actions, rewards, **options) -> np.ndarray:
    """ACE's causal weights: shape (A,), positive, summing to A; uniform ones (with a
    :class:`CausalWeightsWarning`) when the data cannot support a fit.

    ``options`` are those of :func:`fit_causal_weights` (``transform``, ``min_std``,
    ``random_state``, ``backend``: "fast" (default) or "lingam", see :data:`BACKENDS`;
    ``coefficients``: "lasso" (default, the reference's) or "ols").
    """
    fit = fit_causal_weights(obs, actions, rewards, **options)
    if fit.fallback:
        warnings.warn(
            f"Causal weights fell back to uniform ones ({fit.fallback}).",
            CausalWeightsWarning, stacklevel=2,
        )
    return fit.weights


class TransitionFIFO:
    """Ring buffer of the most recent ``capacity`` transitions ``(s, a, r)`` (the reference's
    ``local_buffer``): the causal step's data, separate from the replay buffer."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        self.capacity, self.obs_dim, self.action_dim = int(capacity), int(obs_dim), int(action_dim)
        self._data = np.zeros((self.capacity, self.obs_dim + self.action_dim + 1), np.float32)
        self._next = 0
        self.size = 0
        #: Transitions ever added (the env steps the FIFO has seen).
        self.num_added = 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.hstack([
            np.asarray(obs, np.float32).reshape(len(obs), -1),
            np.asarray(actions, np.float32).reshape(len(actions), -1),
            np.asarray(rewards, np.float32).reshape(-1, 1),
        ])
        if rows.shape[1] != self._data.shape[1]:
            raise ValueError(f"Transitions have {rows.shape[1]} columns, the FIFO "
                             f"{self._data.shape[1]} (obs {self.obs_dim} + actions "
                             f"{self.action_dim} + reward).")
        self.num_added += len(rows)
        rows = rows[-self.capacity:]
        idx = (self._next + np.arange(len(rows))) % self.capacity
        self._data[idx] = rows
        self._next = int((self._next + len(rows)) % self.capacity)
        self.size = min(self.capacity, self.size + len(rows))

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs, actions, rewards) in insertion order, oldest first."""
        data = np.roll(self._data[: self.size], -self._next if self.full else 0, axis=0)
        s, a = self.obs_dim, self.action_dim
        return data[:, :s], data[:, s:s + a], data[:, -1]

    def get_state(self) -> dict:
        return {"data": self._data[: self.size].copy(), "next": self._next, "size": self.size,
                "num_added": self.num_added}

    def set_state(self, state: dict) -> None:
        data = state["data"]
        if data.shape[1] != self._data.shape[1]:
            raise ValueError("Checkpointed causal FIFO has a different transition width.")
        self._data[: len(data)] = data
        self._next, self.size, self.num_added = state["next"], state["size"], state["num_added"]
