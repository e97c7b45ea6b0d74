"""Memory over a long run (issue 29 §4): the resident memory (RSS) of the driver (the algorithm
and its replay), the learners, the env runners and ACE's causal actor, sampled every
``--every`` env steps, written to a CSV as it goes and drawn as a PNG.

Trains a config file's algorithm on an embedded local Ray with ``--runners`` remote env runners
and ``--learners`` learners (so each part is its own process; their RSS is read from
``/proc``, the processes found by the titles Ray gives its actors: ``ray::GuardedEnvRunner``,
``ray::_WrappedExecutable`` for a learner, ``ray::CausalWorker``). The replay's arrays are
allocated zeroed, and the OS maps their pages as rows are first written, so the driver grows
by the replay's bytes per transition until the replay is full: the CSV has the replay's
written bytes beside the RSS, and the summary reports each process's growth after the replay
filled (or, if it never fills, the driver's growth beyond the bytes the replay wrote). Run:
    .venv/bin/python benchmarks/memory.py CONFIG --steps 200000 [--every 10000]
        [--runners 1] [--learners 1] [--set training.replay_capacity=100000] --out DIR
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from pathlib import Path

#: Role of each Ray actor class (the process title after ``ray::``, up to the first ``.``), by
#: the end of its class name. RLlib's remote learners run inside Ray Train's
#: ``_WrappedExecutable`` actors.
ROLES = (("EnvRunner", "env runners"), ("Learner", "learners"),
         ("_WrappedExecutable", "learners"), ("CausalWorker", "causal actor"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def ray_actor_rss(session_pids: set[int]) -> dict[str, tuple[int, int]]:
    """{role: (RSS bytes summed over its processes, number of processes)} for this run's actors
    (``session_pids``: the processes below this driver's Ray instance)."""
    found = defaultdict(lambda: [0, 0])
    for pid in session_pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
            rss = rss_bytes(pid)
        except OSError:
            continue
        if not title.startswith("ray::"):
            continue
        actor = title[len("ray::"):].split(".")[0].split(" ")[0]
        for suffix, role in ROLES:
            if actor.endswith(suffix):
                found[role][0] += rss
                found[role][1] += 1
    return {role: tuple(v) for role, v in found.items()}


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc)."""
    children = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def replay_written_bytes(algo) -> int:
    """Bytes of the replay rows written so far (each column's bytes per row x stored rows)."""
    replays = getattr(algo.replay, "replays", {"": algo.replay})
    total = 0
    for replay in replays.values():
        per_row = sum(column.nbytes for column in replay.columns.values()) / replay.capacity
        total += int(per_row * len(replay))
    return total


def build(path: str, runners: int, learners: int, every: int, overrides: list[str], seed: int):
    """The config file's algorithm config with ``--set`` overrides, ``runners`` remote env
    runners and ``learners`` learners, no evaluation, an iteration per ``every`` env steps at
    most."""
    from platform_seed_study import parse_overrides

    from rllib_ext.cli.config_file import load_experiment

    cfg = load_experiment(path).build_config(overrides=parse_overrides(overrides))
    return (cfg
            .env_runners(num_env_runners=runners)
            .learners(num_learners=learners)
            .evaluation(evaluation_interval=None)
            .reporting(min_sample_timesteps_per_iteration=min(
                every, cfg.min_sample_timesteps_per_iteration or every))
            .debugging(seed=seed, log_level="ERROR"))


def run(args) -> Path:
    import torch

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "memory.csv"
    init_local_ray(num_cpus=max(2, args.runners + args.learners + 1), include_dashboard=False)
    rllib_ext.register()
    algo = build(args.config, args.runners, args.learners, args.every, args.set,
                 args.seed).build_algo()
    fields = ["env_steps", "wall_s", "episode_return_mean", "replay_rows", "replay_written_mb",
              "driver_mb", "learners_mb", "env_runners_mb", "causal_actor_mb", "processes"]
    try:
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            t0, steps, next_sample, episode_return = time.perf_counter(), 0, 0, float("nan")
            while True:
                if steps >= next_sample:
                    # The embedded Ray's raylet is this driver's child, its workers the raylet's.
                    actors = ray_actor_rss(descendants(os.getpid()))
                    row = {
                        "env_steps": steps, "wall_s": round(time.perf_counter() - t0, 1),
                        "episode_return_mean": episode_return,
                        "replay_rows": len(algo.replay) if hasattr(algo.replay, "__len__")
                        else algo.replay.total_size,
                        "replay_written_mb": replay_written_bytes(algo) / 2**20,
                        "driver_mb": rss_bytes(os.getpid()) / 2**20,
                        "processes": " ".join(f"{role}:{n}" for role, (_, n) in actors.items()),
                    }
                    for role, key in (("learners", "learners_mb"),
                                      ("env runners", "env_runners_mb"),
                                      ("causal actor", "causal_actor_mb")):
                        row[key] = actors.get(role, (0, 0))[0] / 2**20
                    writer.writerow({k: round(v, 3) if isinstance(v, float) else v
                                     for k, v in row.items()})
                    f.flush()
                    print(", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in row.items()), flush=True)
                    next_sample += args.every
                if steps >= args.steps:
                    break
                metrics = algo.train()["env_runners"]
                steps = int(metrics["num_env_steps_sampled_lifetime"])
                episode_return = float(metrics.get("episode_return_mean", float("nan")))
    finally:
        algo.stop()
        shutdown_local_ray()
    return csv_path


PARTS = (("driver_mb", "driver (algorithm, replay)"), ("learners_mb", "learners"),
         ("env_runners_mb", "env runners"), ("causal_actor_mb", "causal actor"))


def read_rows(csv_path: Path) -> list[dict]:
    with open(csv_path) as f:
        return [{k: (v if k == "processes" else float(v or "nan")) for k, v in row.items()}
                for row in csv.DictReader(f)]


def summary(rows: list[dict], capacity: int | None) -> None:
    """Each part's growth from the first sample after the replay filled (or after learning
    started, if it never fills) to the last; the driver's also net of the replay's writes."""
    full = [r for r in rows if capacity and r["replay_rows"] >= capacity]
    if len(full) >= 2:
        start, since = full[0], "the replay filled"
    else:  # never full, or full only at the last sample
        start, since = rows[min(1, len(rows) - 1)], "the second sample (learning under way)"
    end = rows[-1]
    print(f"\ngrowth from {start['env_steps']:,.0f} env steps ({since}) to "
          f"{end['env_steps']:,.0f}:")
    for key, label in PARTS:
        if not end[key]:
            continue
        growth = (end[key] - start[key]) / start[key]
        print(f"  {label:28s} {start[key]:8.1f} MB -> {end[key]:8.1f} MB  {growth:+.1%}")
    net_start = start["driver_mb"] - start["replay_written_mb"]
    net_end = end["driver_mb"] - end["replay_written_mb"]
    print(f"  {'driver less replay writes':28s} {net_start:8.1f} MB -> {net_end:8.1f} MB  "
          f"{(net_end - net_start) / net_start:+.1%}")


def plot(rows: list[dict], png: Path, title: str) -> None:
    """Left: each part's RSS and the replay's written bytes. Right: each part's change since
    the second sample (learning under way), the driver's also net of the replay's writes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, delta) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["env_steps"] for r in rows]
    base = rows[min(1, len(rows) - 1)]
    for key, label in PARTS:
        if any(r[key] for r in rows):
            line, = ax.plot(steps, [r[key] for r in rows], marker=".", label=label)
            delta.plot(steps, [r[key] - base[key] for r in rows], marker=".",
                       color=line.get_color(), label=label)
    ax.plot(steps, [r["replay_written_mb"] for r in rows], ls="--", color="grey",
            label="replay rows written")
    delta.plot(steps, [r["driver_mb"] - r["replay_written_mb"]
                       - (base["driver_mb"] - base["replay_written_mb"]) for r in rows],
               ls="--", color="black", label="driver less replay writes")
    ax.set_ylabel("resident memory (MB)")
    delta.set_ylabel(f"change since {base['env_steps']:,.0f} env steps (MB)")
    for a in (ax, delta):
        a.set_xlabel("env steps")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--every", type=int, default=10_000)
    p.add_argument("--runners", type=int, default=1)
    p.add_argument("--learners", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KNOB=VALUE",
                   help="a config override, e.g. training.replay_capacity=100000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder for memory.csv and memory.png")
    p.add_argument("--plot-only", action="store_true",
                   help="redraw and summarise an existing OUT/memory.csv")
    args = p.parse_args()
    csv_path = Path(args.out) / "memory.csv" if args.plot_only else run(args)
    rows = read_rows(csv_path)
    config = build(args.config, 0, 0, args.every, args.set, args.seed)
    capacity = getattr(config, "replay_capacity", None) or (
        getattr(config, "replay_buffer_config", None) or {}).get("capacity")
    summary(rows, capacity)
    plot(rows, csv_path.with_suffix(".png"), f"{Path(args.config).stem}: RSS per process")


if __name__ == "__main__":
    main()
