"""Scale on paper (issue 29 §5): what a weight sync and a sample round move, how often, and the
env-runner count at which the learner becomes the bottleneck, for the main job (MP-DQN on
Platform, ``configs/pdqn/platform.yaml``) and ACE (``configs/ace/hopper.yaml``).

Each row starts a local ``ray.cluster_utils.Cluster``: a head node (this driver, the algorithm
and its replay, the learners, ACE's causal actor) and one node per remote env runner (a custom
resource places one runner on each node, so a sample round and a weight sync cross nodes
through Ray's object store, as on a real cluster). It trains the config with ``N`` remote env
runners and ``M`` learners (``M=0``: the learner in the driver), then

- times the plugin's own steps of a cycle (``sample_into_replay``, ``learn_on``,
  ``sync_runner_weights``: :mod:`rllib_ext.core.replay_training`) over ``--cycles`` cycles
  after learning has started;
- measures the bytes each moves, serialised as Ray serialises them: the weights one runner
  receives per sync (RLlib ``ray.put``-s them once; each runner node pulls one copy); the
  episodes and metrics one runner returns per sample round, per env step; with learners, the
  batch the driver sends per gradient step and the gradient each learner all-reduces (DDP)
  per step.

A cycle is synchronous: every runner samples ``rollout_fragment_length`` x envs steps, then the
learner takes ``updates_per_env_step`` gradient steps per new env step, then the weights go
out. The sampling wall time of a round does not grow with N (runners sample in parallel, given
cores); the learner's grows linearly. So with the N=1 row's times, a cycle at N runners takes
``sample + N x learn + sync`` and the learner is the bottleneck from
``N* = sample / learn`` on; env steps/s level off at the learner's rate
``F x envs / learn``. The script prints that extrapolation beside the measured rows. On a
machine with fewer cores than runners + learner, the measured N > 1 rows are CPU-bound, not
learner-bound: read them for the bytes, and the N=1 row for the times. Run:
    .venv/bin/python benchmarks/scale.py [--algos pdqn ace] [--runners 1 2 4] [--learners 0]
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections import defaultdict

CONFIGS = {"pdqn": "configs/pdqn/platform.yaml", "ace": "configs/ace/hopper.yaml"}
#: The custom resource that gives each runner node exactly one env runner.
RUNNER_SLOT = "rllib_ext_scale_runner_slot"
NODE_STORE = 200 * 1024**2


def serialized_bytes(obj) -> int:
    """Bytes of ``obj`` as Ray serialises it (pickle 5, numpy buffers out of band)."""
    buffers = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


def build(algo_name: str, runners: int, learners: int, fragment: int | None, cycles: int,
          seed: int):
    """The config file's algorithm with ``runners`` remote env runners (one per runner node)
    and ``learners`` learners; returns (config, env steps per cycle)."""
    from rllib_ext.cli.config_file import load_experiment

    cfg = load_experiment(CONFIGS[algo_name]).build_config()
    fragment = fragment or cfg.rollout_fragment_length
    per_cycle = runners * fragment * cfg.num_envs_per_env_runner
    # The config's iteration size (its per-iteration overhead is spread over as many cycles
    # as in a real run), at most a quarter of the measured cycles.
    per_iteration = min(cfg.min_sample_timesteps_per_iteration or 0,
                        per_cycle * max(1, cycles // 4))
    return (cfg
            .env_runners(num_env_runners=runners, rollout_fragment_length=fragment,
                         num_cpus_per_env_runner=0.1,
                         custom_resources_per_env_runner={RUNNER_SLOT: 1})
            .learners(num_learners=learners, num_cpus_per_learner=0.1 if learners else "auto")
            .evaluation(evaluation_interval=None)
            .reporting(min_sample_timesteps_per_iteration=per_iteration,
                       min_time_s_per_iteration=0)
            .debugging(seed=seed, log_level="ERROR")), per_cycle


def gradient_bytes(learner) -> int:
    """Bytes of one gradient of every trainable parameter of ``learner``'s modules (float32):
    what each learner all-reduces per gradient step under DDP."""
    return sum(4 * p.numel() for module in learner.module.values()
               for p in module.parameters() if p.requires_grad)


class Timed:
    """Wraps an algorithm's bound method: total wall time and calls (and, for the learner
    group's update, the bytes of the batches it ships)."""

    def __init__(self, fn, measure_bytes=False):
        self.fn, self.measure_bytes = fn, measure_bytes
        self.seconds, self.calls, self.bytes = 0.0, 0, 0

    def __call__(self, *args, **kwargs):
        if self.measure_bytes:
            self.bytes += serialized_bytes(kwargs.get("batch", args[0] if args else None))
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def measure(algo_name: str, runners: int, learners: int, fragment: int | None, cycles: int,
            seed: int) -> dict:
    import ray
    from ray.cluster_utils import Cluster
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    import rllib_ext

    causal_cpus = 1 if algo_name == "ace" else 0
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": max(1, learners) + causal_cpus, "object_store_memory": NODE_STORE,
        "include_dashboard": False})
    algo = None
    try:
        for _ in range(runners):
            cluster.add_node(num_cpus=1, resources={RUNNER_SLOT: 1},
                             object_store_memory=NODE_STORE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        rllib_ext.register()
        config, per_cycle = build(algo_name, runners, learners, fragment, cycles, seed)
        algo = config.build_algo()
        warmup = config.num_steps_sampled_before_learning_starts + 2 * per_cycle
        steps = 0
        while steps < warmup:
            steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        timers = {name: Timed(getattr(algo, name))
                  for name in ("sample_into_replay", "learn_on", "sync_runner_weights")}
        for name, timer in timers.items():
            setattr(algo, name, timer)
        update = Timed(algo.learner_group.update, measure_bytes=learners > 0)
        algo.learner_group.update = update
        t0 = time.perf_counter()
        while timers["sample_into_replay"].calls < cycles:
            algo.train()
        wall = time.perf_counter() - t0
        cycles = timers["sample_into_replay"].calls

        policies = list(algo.learner_group.get_state(
            components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}",
            inference_only=True)[COMPONENT_LEARNER][COMPONENT_RL_MODULE])
        state = algo.learner_group.get_state(
            components=[f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{p}" for p in policies],
            inference_only=True)[COMPONENT_LEARNER]
        weight_bytes = serialized_bytes(
            {k: v for k, v in state.items() if k in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO)})
        sample_bytes = algo.env_runner_group.foreach_env_runner(
            lambda r: (serialized_bytes((r.sample(), r.get_metrics())), r.num_envs),
            local_env_runner=False)
        round_bytes = sum(b for b, _ in sample_bytes) / len(sample_bytes)
        grad_bytes = next(iter(algo.learner_group.foreach_learner(gradient_bytes))).get()
        step_ms = {name: 1e3 * t.seconds / max(t.calls, 1) for name, t in timers.items()}
        return {
            "algo": algo_name, "N": runners, "M": learners, "per_cycle": per_cycle,
            "cycle_ms": 1e3 * wall / cycles, "steps_per_s": per_cycle * cycles / wall,
            "sample_ms": step_ms["sample_into_replay"], "learn_ms": step_ms["learn_on"],
            "sync_ms": step_ms["sync_runner_weights"],
            "weight_bytes": weight_bytes,
            "sample_bytes_per_step": round_bytes / (per_cycle / runners),
            # learn_on ships all of a cycle's gradient steps in one update call.
            "batch_bytes_per_update": update.bytes / (
                cycles * per_cycle * config.updates_per_env_step) if learners else 0.0,
            "grad_bytes": grad_bytes,
        }
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()
        cluster.shutdown()


def print_rows(rows: list[dict]) -> None:
    print(f"\n{'algo':5} {'N':>2} {'M':>2} {'steps/cycle':>11} {'cycle ms':>9} {'sample':>8} "
          f"{'learn':>8} {'sync':>7} {'syncs/s':>8} {'env st/s':>9} {'weights/sync/runner':>20} "
          f"{'sample B/env step':>18} {'batch B/update':>15} {'grad B/update':>14}")
    for r in rows:
        print(f"{r['algo']:5} {r['N']:>2} {r['M']:>2} {r['per_cycle']:>11} {r['cycle_ms']:>9.1f} "
              f"{r['sample_ms']:>8.1f} {r['learn_ms']:>8.1f} {r['sync_ms']:>7.1f} "
              f"{1e3 / r['cycle_ms']:>8.1f} {r['steps_per_s']:>9.1f} "
              f"{r['weight_bytes']:>20,} {r['sample_bytes_per_step']:>18,.0f} "
              f"{r['batch_bytes_per_update']:>15,.0f} {r['grad_bytes']:>14,}")


def extrapolate(row: dict, counts=(1, 2, 4, 8, 16, 32)) -> None:
    """Cycle time and throughput at N runners from one N=1 row (module docstring)."""
    sample, learn, sync = row["sample_ms"], row["learn_ms"] / row["N"], row["sync_ms"]
    other = row["cycle_ms"] - row["sample_ms"] - row["learn_ms"] - row["sync_ms"]
    per_runner = row["per_cycle"] // row["N"]
    n_star = sample / learn
    print(f"\n{row['algo']} (M={row['M']}), from N=1: sample round {sample:.1f} ms, learner "
          f"{learn:.1f} ms per runner's steps, sync {sync:.1f} ms, rest {other:.1f} ms; the "
          f"learner is the bottleneck from N* = {n_star:.2f} runners; env steps/s level off at "
          f"{1e3 * per_runner / learn:.1f}")
    print(f"{'N':>3} {'cycle ms':>9} {'learner share':>14} {'env steps/s':>12} "
          f"{'syncs/s':>8} {'weight MB/s out':>16} {'sample MB/s in':>15}")
    for n in counts:
        cycle = sample + n * learn + sync + other
        rate = n * per_runner / (cycle / 1e3)
        print(f"{n:>3} {cycle:>9.1f} {n * learn / cycle:>14.0%} {rate:>12.1f} "
              f"{1e3 / cycle:>8.2f} {n * row['weight_bytes'] / cycle / 1e3:>16.2f} "
              f"{rate * row['sample_bytes_per_step'] / 1e6:>15.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=["pdqn", "ace"], choices=sorted(CONFIGS))
    p.add_argument("--runners", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--learners", nargs="+", type=int, default=[0])
    p.add_argument("--fragment", type=int, default=None,
                   help="rollout_fragment_length (default: the config's)")
    p.add_argument("--cycles", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    rows = []
    for algo_name in args.algos:
        for m in args.learners:
            for n in args.runners:
                rows.append(measure(algo_name, n, m, args.fragment, args.cycles, args.seed))
                print_rows(rows[-1:])
    print_rows(rows)
    by_key = defaultdict(list)
    for r in rows:
        by_key[(r["algo"], r["M"])].append(r)
    for group in by_key.values():
        first = min(group, key=lambda r: r["N"])
        if first["N"] == 1:
            extrapolate(first)


if __name__ == "__main__":
    main()
