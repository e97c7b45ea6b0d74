"""Does ACE's causal worker starve on a loaded machine? Fit latency quiet vs loaded, measured in
one run.

A causal fit is submitted to the worker exactly as ACE does (``create_causal_worker``: one CPU
reserved, one thread, the creating process's niceness) and timed from submission to result.
Then ``--load-factor`` x cores busy processes at this process's priority (standing in for env
runners and learners) load the machine and the fits are timed again. For comparison the same
is measured with a worker left at Ray's default worker niceness (15), which is what ACE's
worker was before it raised its priority.

Run:
    .venv/bin/python benchmarks/causal_worker_load.py [--vars 24] [--samples 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i * i


def _data(num_vars: int, samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    num_a = 6
    num_s = num_vars - num_a - 1
    s = rng.uniform(-1, 1, (samples, num_s))
    a = rng.uniform(-1, 1, (samples, num_a)) + 0.3 * s[:, np.arange(num_a) % num_s]
    r = a @ np.linspace(1.0, 0.0, num_a) + 0.2 * s[:, 0] + rng.uniform(-0.5, 0.5, samples)
    return s, a, r


def _latencies(worker, data, repeats: int) -> list[float]:
    import ray

    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        ray.get(worker.fit.remote(*data, {"backend": "fast"}))
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vars", type=int, default=24)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--load-factor", type=int, default=2, help="busy processes per core")
    args = p.parse_args()

    import ray

    from rllib_ext.algorithms.ace.causal_state import CausalWorker, create_causal_worker
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    cores = os.cpu_count()
    init_local_ray(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    data = _data(args.vars, args.samples)
    workers = {
        "ACE's worker": create_causal_worker(1, 1),
        "Ray default (nice 15)": ray.remote(num_cpus=0)(CausalWorker).remote(15, 1),
    }
    try:
        for name, worker in workers.items():
            info = ray.get(worker.info.remote())
            print(f"{name}: niceness {info['niceness']}, threads {info['num_threads']}, "
                  f"priority error {info['priority_error']}")
            _latencies(worker, data, 1)  # warm-up: imports, first allocation
        quiet = {name: _latencies(w, data, args.repeats) for name, w in workers.items()}
        stop = mp.Event()
        busy = [mp.Process(target=_busy, args=(stop,)) for _ in range(args.load_factor * cores)]
        for proc in busy:
            proc.start()
        time.sleep(1.0)
        try:
            loaded = {name: _latencies(w, data, args.repeats) for name, w in workers.items()}
        finally:
            stop.set()
            for proc in busy:
                proc.join()
    finally:
        for worker in workers.values():
            ray.kill(worker)
        shutdown_local_ray()

    print(f"fit: {args.vars} variables x {args.samples} samples (fast backend), {cores} cores, "
          f"load {args.load_factor * cores} busy processes at niceness "
          f"{os.getpriority(os.PRIO_PROCESS, 0)}; median of {args.repeats}")
    print(f"{'worker':<24} {'quiet s':>8} {'loaded s':>9} {'loaded/quiet':>13}")
    for name in workers:
        q, lo = statistics.median(quiet[name]), statistics.median(loaded[name])
        print(f"{name:<24} {q:>8.2f} {lo:>9.2f} {lo / q:>13.2f}")


if __name__ == "__main__":
    main()
