"""Seed study: an experiment file (e.g. ``configs/pdqn/platform.yaml``) on seeds fixed before
running, each trained to the budget, with greedy returns of the *last* and the *best* weights at
every milestone, summarised as median / IQR / count >= threshold and plotted as one curve per
seed. Run:

    .venv/bin/python benchmarks/platform_seed_study.py run configs/pdqn/platform.yaml \
        --seeds 0-9 --steps 30000 --milestones 10000 30000 --out benchmarks/seed_study/mpdqn \
        [--set training.exploration_noise=gaussian ...] [--jobs 2]
    .venv/bin/python benchmarks/platform_seed_study.py summary benchmarks/seed_study/mpdqn \
        [more dirs ...] [--plot benchmarks/plots/platform_seed_study.png]

How each seed runs (one process per seed, each on an embedded local Ray of its own):
- the experiment file's config at that seed, with RLlib's own evaluation switched off: the
  study evaluates the module itself, in a plain loop over fresh environments seeded apart from
  training (so evaluating never touches a training random stream);
- every ``--every`` env steps: greedy return over ``--curve-episodes`` episodes (env seeds
  10 000, 10 001, ...); the weights with the best such return so far are kept ("best");
- at every milestone: the greedy return over ``--final-episodes`` episodes (env seeds
  1 000 000, ...) of the current ("last") and of the best weights so far. The best weights
  are chosen on other episodes than the ones that score them, so "best" is not inflated by
  the choice.

One JSON per seed (``seed_<n>.json``, and with ``--save-weights`` the module states
``seed_<n>_{last,best}.pt``) is written when the seed ends; ``run`` skips seeds whose
JSON exists, so a study resumes where it stopped. ``summary`` reads any folder of such files
(another implementation's too, if it writes the same fields).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CURVE_SEED, FINAL_SEED = 10_000, 1_000_000
#: Learner metrics recorded beside each curve point (the P-DQN family's; others are skipped).
LEARNER_KEYS = ("q_loss", "q_mean", "td_target_mean", "action_grad_norm",
                "params_out_of_bounds", "param_loss", "epsilon")


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> [0..9]; ``"0,3,5"`` -> [0, 3, 5]."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def parse_overrides(items: list[str]) -> dict:
    """``["training.gaussian_sigma=0.2"]`` -> ``{"training": {"gaussian_sigma": 0.2}}`` (values
    read as YAML)."""
    import yaml

    overrides: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not _:
            raise SystemExit(f"--set {item!r}: write SECTION.KEY=VALUE, e.g. "
                             "training.gaussian_sigma=0.2")
        overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    return overrides


def greedy_action(module, obs: np.ndarray) -> tuple:
    """The env action ``(k, params_1, ..., params_K)`` of ``module``'s greedy policy at ``obs``."""
    import torch
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.as_tensor(obs[None])})
    action = tuple(a[0].numpy() for a in out[Columns.ACTIONS])
    return (int(action[0]), *action[1:])


def greedy_return(module, env, episodes: int, first_seed: int, score: str = "return") -> float:
    """Mean over ``episodes`` episodes of ``module``'s greedy actions of the undiscounted return
    (``score="return"``) or of whether the episode ended with a goal (``score="goal"``: the
    env's ``info["goal"]``, i.e. P(goal) on Robot Soccer Goal)."""
    scores = []
    for i in range(episodes):
        obs, _ = env.reset(seed=first_seed + i)
        done, total, info = False, 0.0, {}
        while not done:
            obs, reward, terminated, truncated, info = env.step(greedy_action(module, obs))
            total += float(reward)
            done = terminated or truncated
        scores.append(total if score == "return" else float(bool(info.get("goal", False))))
    return float(np.mean(scores))


def run_seed(args, seed: int) -> dict:
    """Trains one seed to ``args.steps`` and returns its record."""
    import copy

    import torch
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        LEARNER_RESULTS,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        NUM_EPISODES_LIFETIME,
    )

    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray
    from rllib_ext.envs import make

    torch.set_num_threads(args.threads)
    experiment = load_experiment(args.config)
    overrides = parse_overrides(args.set)
    overrides.setdefault("evaluation", {})["evaluation_interval"] = None
    config = experiment.build_config(seed=seed, overrides=overrides)
    env = make(experiment.env, **experiment.env_config)
    milestones = sorted(set(args.milestones) | {args.steps})

    init_local_ray()
    try:
        algo = config.build_algo()
        module = algo.get_module()
        # ``steps`` counts the budget's unit: env steps, or episodes with ``--unit episodes``.
        counter = NUM_EPISODES_LIFETIME if args.unit == "episodes" else \
            NUM_ENV_STEPS_SAMPLED_LIFETIME
        start, steps, curve, learner_curve, record = time.time(), 0, [], [], {}
        best = (-np.inf, None, 0)
        next_eval = args.every
        while steps < args.steps:
            result = algo.train()
            steps = int(result[ENV_RUNNER_RESULTS][counter])
            env_steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
            if steps < next_eval and steps < milestones[0]:
                continue
            module = algo.get_module()
            value = greedy_return(module, env, args.curve_episodes, CURVE_SEED, args.score)
            curve.append([int(steps), value])
            learner = result.get(LEARNER_RESULTS, {}).get(DEFAULT_MODULE_ID, {})
            learner_curve.append({"env_steps": env_steps, **{
                k: float(learner[k]) for k in LEARNER_KEYS if k in learner}})
            next_eval = (steps // args.every + 1) * args.every
            if value > best[0]:
                best = (value, copy.deepcopy(module.get_state()), int(steps))
            while milestones and steps >= milestones[0]:
                current = copy.deepcopy(module.get_state())
                last = greedy_return(module, env, args.final_episodes, FINAL_SEED, args.score)
                module.set_state(best[1])
                best_value = greedy_return(module, env, args.final_episodes, FINAL_SEED,
                                           args.score)
                module.set_state(current)
                record[str(milestones.pop(0))] = {
                    "last": last, "best": best_value, "best_at": best[2], "at": int(steps),
                    "env_steps": env_steps, "wall_s": time.time() - start}
                print(f"seed {seed} @ {steps} {args.unit} ({env_steps} env steps, "
                      f"{time.time() - start:.0f} s): last {last:.3f}, best {best_value:.3f} "
                      f"(from {best[2]})", flush=True)
        if args.save_weights:
            import torch

            folder = Path(args.out)
            torch.save(module.get_state(), folder / f"seed_{seed}_last.pt")
            torch.save(best[1], folder / f"seed_{seed}_best.pt")
        algo.stop()
    finally:
        shutdown_local_ray()
    return {"impl": "rllib_ext", "config": str(args.config), "set": args.set, "seed": seed,
            "unit": args.unit, "score": args.score, "steps": int(steps), "env_steps": env_steps,
            "wall_s": time.time() - start, "curve": curve,
            "learner": learner_curve, "milestones": record}


def run(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in parse_seeds(args.seeds) if not (out / f"seed_{s}.json").exists()]
    if args.worker is not None:
        record = run_seed(args, args.worker)
        (out / f"seed_{args.worker}.json").write_text(json.dumps(record))
        return
    # One process per seed (a fresh Ray each), at most --jobs at a time.
    running: list[subprocess.Popen] = []
    while todo or running:
        while todo and len(running) < args.jobs:
            seed = todo.pop(0)
            command = [sys.executable, __file__, *sys.argv[1:], "--worker", str(seed)]
            log = open(out / f"seed_{seed}.log", "w")
            running.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONWARNINGS": "ignore"}))
        time.sleep(2)
        for process in [p for p in running if p.poll() is not None]:
            running.remove(process)
            if process.returncode:
                print(f"{process.args[-1]}: exit {process.returncode}, see its log",
                      file=sys.stderr)
    summary(argparse.Namespace(dirs=[out], threshold=args.threshold, plot=None, markdown=False,
                               titles=None))


def load_records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def describe(values: list[float], threshold: float) -> str:
    v = np.asarray(values)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return (f"{med:.3f} [{q1:.3f}, {q3:.3f}] mean {v.mean():.3f}, "
            f"{int((v >= threshold).sum())}/{len(v)} >= {threshold}")


def markdown(args) -> None:
    """One table row per folder and milestone: median [IQR] and count >= threshold of the
    last and the best weights, and every seed's best."""
    print("| run | budget | seeds | last: median [IQR] | last >= thr | best: median [IQR] | "
          "best >= thr | per seed (best, else last) |")
    print("|---|---:|---:|---|---:|---|---:|---|")
    for folder in map(Path, args.dirs):
        records = sorted(load_records(folder), key=lambda r: r["seed"])
        unit = records[0].get("unit", "env_steps").replace("_", " ") if records else ""
        keys = sorted({k for r in records for k in r["milestones"]}, key=int)
        for key in keys:
            have = [r for r in records if key in r["milestones"]]
            cells = []
            for kind in ("last", "best"):
                values = [r["milestones"][key].get(kind) for r in have]
                if any(v is None for v in values):  # e.g. an implementation without "best"
                    cells += ["–", "–"]
                    continue
                v = np.asarray(values)
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                cells += [f"{med:.3f} [{q1:.3f}, {q3:.3f}]",
                          f"{int((v >= args.threshold).sum())}/{len(v)}"]
            kind = "best" if all(r["milestones"][key].get("best") is not None for r in have) \
                else "last"
            per_seed = " / ".join(f"{r['milestones'][key][kind]:.3f}" for r in have)
            print(f"| {folder.name} | {int(key):,} {unit} | {len(have)} | {' | '.join(cells)} | "
                  f"{per_seed} |")


def summary(args) -> None:
    if args.markdown:
        markdown(args)
        return
    for folder in map(Path, args.dirs):
        records = load_records(folder)
        if not records:
            print(f"{folder}: no records")
            continue
        seeds = [r["seed"] for r in records]
        print(f"== {folder} (seeds {seeds})")
        keys = sorted({k for r in records for k in r["milestones"]}, key=int)
        for key in keys:
            have = [r for r in records if key in r["milestones"]]
            for kind in ("last", "best"):
                values = [r["milestones"][key].get(kind) for r in have]
                if any(v is None for v in values):
                    continue
                print(f"  @{int(key):>6} {kind:4}: {describe(values, args.threshold)}  "
                      + " ".join(f"{v:.3f}" for v in values))
    if args.plot:
        plot(args)


def plot(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folders = list(map(Path, args.dirs))
    fig, axes = plt.subplots(1, len(folders), figsize=(5 * len(folders), 3.6), sharey=True,
                             squeeze=False)
    titles = args.titles or [f.name for f in folders]
    if len(titles) != len(folders):
        raise SystemExit(f"--titles: {len(titles)} titles for {len(folders)} folders")
    for ax, folder, title in zip(axes[0], folders, titles, strict=True):
        records = sorted(load_records(folder), key=lambda r: r["seed"])
        for r in records:
            xs, ys = zip(*r["curve"], strict=True)
            ax.plot(np.asarray(xs) / 1000, ys, lw=1, label=f"seed {r['seed']}")
        ax.axhline(args.threshold, color="k", ls=":", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"{records[0].get('unit', 'env_steps').replace('_', ' ')} (k)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("P(goal), greedy" if records[0].get("score") == "goal"
                          else "greedy return")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the seeds (resumes: skips seeds already recorded)")
    r.add_argument("config", help="experiment file, e.g. configs/pdqn/platform.yaml")
    r.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,2,4 (default 0-9)")
    r.add_argument("--steps", type=int, default=30_000, help="budget per seed, in --unit")
    r.add_argument("--unit", choices=("env_steps", "episodes"), default="env_steps",
                   help="what --steps, --milestones and --every count (Goal's budget is "
                        "episodes)")
    r.add_argument("--score", choices=("return", "goal"), default="return",
                   help="greedy score: mean return, or P(goal) (Robot Soccer Goal)")
    r.add_argument("--milestones", type=int, nargs="*", default=[10_000],
                   help="points at which last and best are scored (the end always is)")
    r.add_argument("--every", type=int, default=2_000, help="units between curve points")
    r.add_argument("--curve-episodes", type=int, default=100)
    r.add_argument("--final-episodes", type=int, default=1_000)
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, e.g. training.gaussian_sigma=0.2 (repeatable)")
    r.add_argument("--out", required=True, help="folder for seed_<n>.json and logs")
    r.add_argument("--jobs", type=int, default=1, help="seeds run at a time")
    r.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads per seed (default 1: with a 128-unit network, "
                        "more threads spin-wait, most of all beside other jobs)")
    r.add_argument("--threshold", type=float, default=0.95)
    r.add_argument("--save-weights", action="store_true",
                   help="also write the last and best module states (seed_<n>_{last,best}.pt)")
    r.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    s = sub.add_parser("summary", help="median / IQR / count >= threshold per folder")
    s.add_argument("dirs", nargs="+")
    s.add_argument("--threshold", type=float, default=0.95)
    s.add_argument("--plot", help="PNG with one curve per seed, one panel per folder")
    s.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    s.add_argument("--titles", nargs="+", help="panel titles, one per folder (default: names)")
    args = parser.parse_args()
    (run if args.command == "run" else summary)(args)


if __name__ == "__main__":
    main()
