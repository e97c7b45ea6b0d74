"""Torch intra-op threads of an algorithm's main process, matched to the CPUs Ray reserved.

Ray gives an ordinary actor ``OMP_NUM_THREADS`` = its CPUs, but a Tune trial running an RLlib
algorithm keeps torch's default (one thread per core of the machine): with two trials on a
2-core machine that is four busy threads on two cores. Tiny networks then spend most of their
time in the thread pool's spin-waits (figures: benchmarks/RESULTS.md, "Torch threads in Tune
trials"). The local learner and the
local env runner live in that process, so its reservation is the algorithm's main-process
bundle (``num_cpus_for_main_process``, or one learner's CPUs if larger when
``num_learners=0``). Reserve more CPUs there to get more threads.

rllib_ext's algorithms apply the cap in their ``setup()``; the CLI adds
:func:`limit_torch_threads_on_init` as an ``on_algorithm_init`` callback to RLlib's built-in
algorithms (e.g. the SAC baselines in ``configs/``), so side-by-side trials compare fairly.
"""

from __future__ import annotations

import math

import ray

from rllib_ext.core.rllib_compat import main_process_bundle


def reserved_main_process_cpus(config) -> int:
    """Whole CPUs in the algorithm's main-process bundle (at least 1), as RLlib reserves them."""
    return max(1, math.floor(main_process_bundle(config).get("CPU", 1)))


def limit_torch_threads(config) -> int | None:
    """Caps torch's intra-op threads at the main process's reserved CPUs when this process is
    a Ray actor (a Tune trial); a plain driver script keeps torch's default. Returns the new
    thread count, or None when nothing changed."""
    import torch

    if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
        return None
    cpus = reserved_main_process_cpus(config)
    if torch.get_num_threads() <= cpus:
        return None
    torch.set_num_threads(cpus)
    return cpus


def limit_torch_threads_on_init(algorithm, **kwargs) -> None:
    """``on_algorithm_init`` callback: :func:`limit_torch_threads` for an algorithm class that
    does not apply it itself (RLlib's built-ins). Runs in the algorithm's own process."""
    limit_torch_threads(algorithm.config)
