"""ACE's causal fit: pip lingam's DirectLiNGAM vs this project's vectorised one ("fast").

Times ``fit_causal_weights`` (``import`` excluded, as in ``CausalFit.fit_seconds``) with
``backend="lingam"`` and ``backend="fast"`` on the same CausalReach-like data, prints both
times, the speed-up measured in this run and the largest weight difference (the run fails if
it exceeds 1e-6); then the fast backend alone at larger sizes (lingam there only with
``--lingam-large``: it scales as p^3 in Python loops, minutes at 120 variables).

Data: S states (uniform noise, each state also driven by the previous one), A actions
(uniform, partly following the states, like a policy) and a reward that depends on the actions
with weights ``linspace(1, 0, A)``, plus ``0.2 s_0`` and uniform noise; columns ``[s, a, r]``.
numpy / BLAS are limited to one thread (threadpoolctl), so both backends get one core.

Run:
    .venv/bin/python benchmarks/causal_fit.py [--samples 10000] [--repeats 3] [--lingam-large]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from rllib_ext.algorithms.ace.causal import fit_causal_weights

# (states, actions): 17 + 6 + 1 = 24 (HalfCheetah), 51 + 8 + 1 = 60, 102 + 17 + 1 = 120.
SIZES = {24: (17, 6), 60: (51, 8), 120: (102, 17)}


def causal_reach_like(num_s: int, num_a: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1.0, 1.0, (n, num_s))
    for k in range(1, num_s):
        s[:, k] += 0.5 * s[:, k - 1]
    a = rng.uniform(-1.0, 1.0, (n, num_a)) + 0.3 * s[:, np.arange(num_a) % num_s]
    r = a @ np.linspace(1.0, 0.0, num_a) + 0.2 * s[:, 0] + rng.uniform(-0.5, 0.5, n)
    return s, a, r


def timed_fit(data, backend: str, repeats: int):
    """(median fit seconds over ``repeats``, the last CausalFit)."""
    times = []
    for _ in range(repeats):
        fit = fit_causal_weights(*data, backend=backend)
        times.append(fit.fit_seconds)
    return statistics.median(times), fit


#: Largest accepted weight difference between the backends.
TOLERANCE = 1e-6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3, help="fast-backend fits per size (median)")
    p.add_argument("--lingam-repeats", type=int, default=1, help="lingam fits at 24 variables")
    p.add_argument("--lingam-large", action="store_true", help="also time lingam at 60 and 120")
    p.add_argument("--sizes", type=int, nargs="+", default=sorted(SIZES), choices=sorted(SIZES))
    args = p.parse_args()
    disagreements = []

    with threadpool_limits(limits=1):
        blas = [f"{i['internal_api']} {i['num_threads']} thread(s)" for i in threadpool_info()]
        print(f"numpy {np.__version__}; thread pools: {', '.join(blas) or 'none'}")
        # Imports and first-call overheads of both backends, outside the timings.
        warm = causal_reach_like(3, 2, 500)
        fit_causal_weights(*warm, backend="fast")
        fit_causal_weights(*warm, backend="lingam")

        print(f"{'vars (S+A+1)':>14} {'samples':>8} {'lingam s':>9} {'fast s':>8} "
              f"{'speed-up':>9} {'max |dw|':>9}  fallback")
        for num_vars in args.sizes:
            num_s, num_a = SIZES[num_vars]
            data = causal_reach_like(num_s, num_a, args.samples)
            fast_s, fast = timed_fit(data, "fast", args.repeats)
            if num_vars == min(SIZES) or args.lingam_large:
                repeats = args.lingam_repeats if num_vars == min(SIZES) else 1
                lingam_s, slow = timed_fit(data, "lingam", repeats)
                diff = float(np.abs(fast.weights - slow.weights).max())
                if not diff <= TOLERANCE:
                    disagreements.append(f"{num_vars} variables: max |dw| = {diff:.1e}")
                cols = f"{lingam_s:>9.2f} {fast_s:>8.3f} {lingam_s / fast_s:>8.1f}x {diff:>9.1e}"
            else:
                cols = f"{'-':>9} {fast_s:>8.3f} {'-':>9} {'-':>9}"
            label = f"{num_vars} ({num_s}+{num_a}+1)"
            print(f"{label:>14} {args.samples:>8} {cols}  {fast.fallback}", flush=True)
    if disagreements:
        raise SystemExit(f"The backends' weights disagree: {'; '.join(disagreements)}")


if __name__ == "__main__":
    main()
