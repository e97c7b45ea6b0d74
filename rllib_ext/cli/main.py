"""``rllib-ext``: train, tune, evaluate, plot and check rllib_ext experiments from YAML files.

Exit codes: 0 success, 1 a run failed, stopped before its stop criteria (``--resume DIR``
continues it), a pass criterion was missed or Ray could not be started or reached, 2 bad
input (config file, arguments, paths); bad input and a Ray that cannot start print one
message and no traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rllib_ext.cli.checkpoints import CHOICES as CHECKPOINT_CHOICES
from rllib_ext.cli.quiet import quiet_ray

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad user input other than a config file (paths, argument values)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rllib-ext",
        description="Train, tune, evaluate and plot rllib_ext algorithms (Ray RLlib plugins).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument(
        "--address",
        help="Ray cluster to join (default: $RAY_ADDRESS, else an embedded local Ray).",
    )
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage", type=_storage_argument,
        help="Results root (default: ./tune_runs); runs go to STORAGE/<experiment>. On a "
             "multi-node cluster a shared filesystem path that every node sees (e.g. NFS).",
    )
    budget = argparse.ArgumentParser(add_help=False)
    budget.add_argument(
        "--stop-timesteps", type=int, metavar="N", help="Stop after N env steps (overrides stop)."
    )

    resume = argparse.ArgumentParser(add_help=False)
    resume.add_argument(
        "--resume", metavar="DIR",
        help="Continue the run in DIR (tune_runs/<run>, written by the same command) instead "
             "of starting one: unfinished and failed trials go on from their latest "
             "checkpoint (from the start if they have none), trials not yet started start, "
             "all until the run's stop criteria. Takes no CONFIG: the run's copy of it is "
             "used, with the run's --seed/--num-env-runners/--stop-timesteps/--num-samples.")

    t = sub.add_parser("train", parents=[cluster, storage, budget, resume],
                       help="Train one experiment with progress lines and a final checkpoint.")
    t.add_argument("config", nargs="?",
                   help="YAML file or short name, e.g. configs/pg/cartpole.yaml")
    t.add_argument("--seed", type=int, help="Random seed (config.debugging(seed=...)).")
    t.add_argument("--num-env-runners", type=int, metavar="N",
                   help="Override config.env_runners(num_env_runners=N).")
    t.add_argument("--gif", metavar="PATH",
                   help="After training, record one greedy episode of the final checkpoint as "
                        "an animated GIF (env must accept render_mode='rgb_array').")

    tu = sub.add_parser("tune", parents=[cluster, storage, budget, resume],
                        help="Run the config's Tune sweep (tune: section: search space, "
                             "scheduler, search algorithm) and print the best trial's config, "
                             "metric and checkpoint.")
    tu.add_argument("config", nargs="?")
    tu.add_argument("--num-samples", type=int, metavar="N",
                    help="Samples of the search space (default: tune.num_samples or 1).")

    e = sub.add_parser("evaluate", parents=[cluster],
                       help="Run greedy (or, with --explore, exploring) episodes from a "
                            "checkpoint and print their returns.")
    e.add_argument("checkpoint",
                   help="A checkpoint directory, or a run / trial directory (tune_runs/<run>): "
                        "then its best checkpoint by --metric (see --pick).")
    e.add_argument("--pick", choices=CHECKPOINT_CHOICES, default="best",
                   help="Which checkpoint of a run directory (default: best; 'last' if no "
                        "checkpoint was evaluated).")
    e.add_argument("--metric", default=None,
                   help="Score of --pick best (default: "
                        "evaluation/env_runners/episode_return_mean, higher is better).")
    e.add_argument("--episodes", type=int, default=10, metavar="N")
    e.add_argument("--explore", action="store_true",
                   help="Act as in training (the module's exploration: sampled actions, "
                        "epsilon, noise) instead of greedily.")
    e.add_argument("--gif", metavar="PATH",
                   help="Also save the first episode as an animated GIF (env must accept "
                        "render_mode='rgb_array').")

    pl = sub.add_parser("plot", help="Write PNG learning curves for a run directory.")
    pl.add_argument("run_dir", help="tune_runs/<experiment> or one trial directory in it.")
    pl.add_argument("--out", help="Directory for the PNGs (default: RUN_DIR).")
    pl.add_argument("--metric", default=None,
                    help="Result column to plot against env steps "
                         "(default: env_runners/episode_return_mean).")

    sub.add_parser("list", help="List algorithms, environments and configs.")

    c = sub.add_parser("check", parents=[cluster, storage],
                       help="Run configs' pass criteria (the slow learning tier) as a table.")
    c.add_argument("configs", nargs="*", default=None,
                   help="Config files or directories (default: configs/; with --dry-run "
                        "configs/ and tune_runs/).")
    c.add_argument("--dry-run", action="store_true",
                   help="Train nothing: build and validate every config, and every point of "
                        "every sweep's search space (see `rllib-ext tune`), in seconds; exit 2 "
                        "if any is invalid.")
    return p


def _storage_argument(value: str) -> str:
    """``--storage``: a local or shared-filesystem path. The CLI reads its runs back from
    disk (summary, --resume, evaluate, plot), so a URI is refused with the alternatives."""
    if "://" in value:
        raise argparse.ArgumentTypeError(
            f"{value!r}: the CLI needs a filesystem path (it reads the run back from disk); "
            "on a multi-node cluster use a shared filesystem that every node mounts at the "
            "same path (e.g. NFS), or for s3:// / gs:// storage run Tune from Python with "
            "tune.RunConfig(storage_path=...).")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_ray()
    from rllib_ext.cli.runner import RayStartError
    from rllib_ext.cli.schema import ConfigError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as e:
        print(f"rllib-ext {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RayStartError as e:
        print(f"rllib-ext {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED


def _config_argument(args) -> str:
    """The CONFIG argument of train / tune (required unless --resume)."""
    if args.config is None:
        raise UsageError("give a config file (e.g. configs/pg/cartpole.yaml), or --resume DIR "
                         "to continue a run.")
    return args.config


def _resumed_run(args, command: str, fixed: tuple[str, ...]):
    """(Experiment, record) of the run ``args.resume`` names, written by ``command``."""
    from rllib_ext.cli import runner
    from rllib_ext.cli.config_file import load_experiment

    if args.config is not None:
        raise UsageError(f"--resume continues the run with its own copy of the config; drop "
                         f"{args.config!r} (or drop --resume to start a new run).")
    for name in (*fixed, "storage"):
        if getattr(args, name) is not None:
            option = "--" + name.replace("_", "-")
            raise UsageError(f"{option} cannot change a resumed run (it keeps its own "
                             f"settings); drop {option}, or start a new run without --resume.")
    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise UsageError(f"--resume {args.resume}: no such directory; give a run directory "
                         "such as tune_runs/<run> printed by `rllib-ext train` or `tune`.")
    record = runner.read_run_record(run_dir)
    if record is None:
        raise UsageError(
            f"--resume {args.resume}: not a run of `rllib-ext train` or `tune` (no "
            f"{runner.RUN_RECORD_FILE}); give the run directory itself (tune_runs/<run>, not a "
            "trial in it), or restore other Tune runs with tune.Tuner.restore(...).")
    if record.get("command") != command:
        raise UsageError(f"--resume {args.resume} is a `rllib-ext {record.get('command')}` run; "
                         f"resume it with `rllib-ext {record.get('command')} --resume "
                         f"{args.resume}`.")
    if record.get("config"):  # the env's module may sit beside the original file
        from rllib_ext.user_envs import add_import_paths

        add_import_paths(Path(record["config"]).resolve().parent)
    return load_experiment(record["experiment_file"]), record


def _cmd_train(args) -> int:
    from rllib_ext.cli import runner
    from rllib_ext.cli.checkpoints import (
        describe,
        describe_final_evaluation,
        final_evaluation,
        last_evaluation,
        pick,
        run_checkpoints,
    )
    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.cli.progress import format_duration, lookup
    from rllib_ext.cli.schema import ENV_STEPS_KEY
    from rllib_ext.core.plain_config import plain_config_dict

    if args.gif and not args.gif.lower().endswith(".gif"):
        raise UsageError(f"--gif needs a path ending in .gif, got {args.gif!r}.")
    if args.resume:
        exp, record = _resumed_run(args, "train", ("seed", "num_env_runners", "stop_timesteps"))
        config = runner.quiet_config(exp.build_config(seed=record["seed"],
                                                      overrides=record["overrides"]))
        where = runner.init_ray(args.address, exp.shipped_modules())
        print(f"rllib-ext: resuming the training of {exp.algorithm} on {exp.env} "
              f"({args.resume}) on {where}", flush=True)
        exp_dir, outcomes = runner.resume(exp, args.resume, plain_config_dict(config))
    else:
        exp = load_experiment(_config_argument(args))
        overrides = {}
        if args.num_env_runners is not None:
            if args.num_env_runners < 0:
                raise UsageError(f"--num-env-runners must be >= 0, got {args.num_env_runners}.")
            overrides["env_runners"] = {"num_env_runners": args.num_env_runners}
        config = runner.quiet_config(exp.build_config(seed=args.seed, overrides=overrides))
        stop = _stop(exp, args)
        where = runner.init_ray(args.address, exp.shipped_modules())
        print(f"rllib-ext: training {exp.algorithm} on {exp.env} ({exp.path}) on {where}",
              flush=True)
        exp_dir, outcomes = runner.run(
            exp, param_space=plain_config_dict(config), stop=stop, storage=args.storage,
            record={"command": "train", "config": str(exp.path), "seed": args.seed,
                    "overrides": overrides})
    outcome = outcomes[0]
    if outcome.error:
        print(f"rllib-ext train: the run failed: {outcome.error}", file=sys.stderr)
        print(f"  logs: {outcome.path}", file=sys.stderr)
        return EXIT_FAILED
    m = outcome.metrics
    if not outcome.finished:
        print(f"rllib-ext train: stopped at iteration {m.get('training_iteration', 0)} "
              f"({int(lookup(m, ENV_STEPS_KEY, 0)):,} env steps), before the stop criteria; "
              f"continue with: rllib-ext train --resume {exp_dir}", file=sys.stderr)
        return EXIT_FAILED
    value = lookup(m, "env_runners/episode_return_mean")
    shown = f"{value:.2f}" if isinstance(value, (int, float)) else "n/a"
    print(
        f"\ndone: {int(lookup(m, ENV_STEPS_KEY, 0)):,} env steps in "
        f"{format_duration(m.get('time_total_s', 0))}, episode_return_mean {shown}"
    )
    evaluation = last_evaluation(outcome.path, exp.evaluation_metric)
    if evaluation is not None:
        steps, greedy, episodes = evaluation
        count = "" if math.isnan(episodes) else f" over {int(episodes):,} episodes"
        print(f"greedy evaluation (last, at {steps:,} env steps): "
              f"{exp.evaluation_metric.split('/')[-1]} {greedy:.3f}{count}")
    checkpoints = run_checkpoints(outcome.path, exp.evaluation_metric)
    last, best = pick(checkpoints, "last"), pick(checkpoints, "best")
    if exp.final_evaluation is not None:
        print(f"evaluating the {exp.final_evaluation['checkpoint']} checkpoint over "
              f"{exp.final_evaluation['episodes']:,} greedy episodes ...", flush=True)
        record = final_evaluation(outcome.path, exp)
        if record is not None:
            print(describe_final_evaluation(record))
    if args.gif:
        from rllib_ext.cli.evaluation import evaluate_checkpoint

        chosen = best or last
        returns, lengths = evaluate_checkpoint(chosen.path, num_episodes=1, gif=args.gif)
        print(f"gif:         {Path(args.gif).resolve()} (one greedy episode of the "
              f"{'best' if best else 'last'} checkpoint: return {returns[0]:.3f}, "
              f"{lengths[0]} steps)")
    print(f"results:     {outcome.path}")
    if best is not None:
        print(f"best checkpoint: {describe(best, exp.evaluation_metric)}")
    print(f"last checkpoint: {describe(last, exp.evaluation_metric) if last else 'none'}")
    print(f"tensorboard: tensorboard --logdir {exp_dir}")
    print(f"plots:       rllib-ext plot {exp_dir}")
    print(f"evaluate:    rllib-ext evaluate {exp_dir}"
          + ("  (its best checkpoint)" if best is not None else ""))
    return EXIT_OK


def _stop(exp, args) -> dict:
    from rllib_ext.cli.schema import ENV_STEPS_KEY

    stop = dict(exp.stop)
    if args.stop_timesteps is not None:
        if args.stop_timesteps < 1:
            raise UsageError(f"--stop-timesteps must be >= 1, got {args.stop_timesteps}.")
        stop[ENV_STEPS_KEY] = args.stop_timesteps
    return stop


def _cmd_tune(args) -> int:
    from rllib_ext.cli import runner
    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.cli.schema import DEFAULT_METRIC
    from rllib_ext.cli.sweep_check import check_sweep

    if args.resume:
        exp, record = _resumed_run(args, "tune", ("num_samples", "stop_timesteps"))
        stop = record.get("stop") or exp.stop
        config = runner.quiet_config(exp.build_config())
        metric = exp.tune.get("metric", DEFAULT_METRIC)
        where = runner.init_ray(args.address, exp.shipped_modules())
        print(f"rllib-ext: resuming the tuning of {exp.algorithm} on {exp.env} "
              f"({args.resume}) on {where}")
        exp_dir, outcomes = runner.resume(exp, args.resume, exp.param_space(config))
    else:
        exp = load_experiment(_config_argument(args))
        num_samples = args.num_samples or int(exp.tune.get("num_samples", 1))
        if num_samples < 1:
            raise UsageError(f"--num-samples must be >= 1, got {num_samples}.")
        config = runner.quiet_config(exp.build_config())
        # Every point of the search space, before Ray starts and any trial is created.
        checked = check_sweep(exp, config)
        if not checked.ok:
            for group in checked.invalid:
                print(f"rllib-ext tune: error: {exp.path}: {group.describe(checked.points)}",
                      file=sys.stderr)
            return EXIT_USAGE
        metric = exp.tune.get("metric", DEFAULT_METRIC)
        where = runner.init_ray(args.address, exp.shipped_modules())
        print(f"rllib-ext: tuning {exp.algorithm} on {exp.env} ({num_samples} sample(s)) on "
              f"{where}")
        print(_sweep_description(exp, config), flush=True)
        print(f"checked {checked.points} point(s) of the search space before starting: all "
              "valid", flush=True)
        stop = _stop(exp, args)
        exp_dir, outcomes = runner.run(
            exp,
            param_space=exp.param_space(config),
            stop=stop,
            storage=args.storage,
            num_samples=num_samples,
            metric=metric,
            record={"command": "tune", "config": str(exp.path), "stop": stop},
            tune_config=exp.tune_config(num_samples),
        )
    from rllib_ext.cli.progress import lookup

    best = runner.best_outcome(outcomes, metric, exp.tune_mode)
    print(f"\n{'trial':<40} {metric.split('/')[-1]:>14}  status")
    for o in outcomes:
        value = lookup(o.metrics, metric)
        shown = f"{value:14.2f}" if isinstance(value, (int, float)) else f"{'n/a':>14}"
        mark = "  <- best" if o is best else ""
        status = o.error or ("not finished" if not o.finished else "ok" if _reached(stop, o)
                             else "stopped early by the scheduler")
        print(f"{o.trial_id[:40]:<40} {shown}  {status}{mark}")
    if best is not None:
        _print_best(exp, best, metric)
    print(f"\nresults:     {exp_dir}\ntensorboard: tensorboard --logdir {exp_dir}")
    if not all(o.finished or o.error for o in outcomes):
        print(f"rllib-ext tune: stopped before every trial reached the stop criteria; "
              f"continue with: rllib-ext tune --resume {exp_dir}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if any(o.error for o in outcomes) else EXIT_OK


def _sweep_description(exp, config) -> str:
    """What a sweep runs: the searched keys, scheduler, search algorithm and the resources
    each trial reserves (the algorithm's own request, from the config)."""
    tune = exp.tune
    kinds = []  # Tune's defaults: FIFO, and random search crossed with the grids
    for key, default in (("scheduler", "fifo"), ("search_alg", "random")):
        raw = tune.get(key)
        kinds.append(raw if isinstance(raw, str) else (raw or {}).get("type", default))
    request = exp.algorithm_class().default_resource_request(config)
    need = getattr(request, "required_resources", request) or {}
    shown = ", ".join(f"{v:g} {k}" for k, v in sorted(need.items()) if v)
    concurrent = tune.get("max_concurrent_trials")
    return (f"searching {', '.join(exp.searched_keys()) or 'nothing (repeats)'} by "
            f"{exp.tune_metric} ({exp.tune_mode}); scheduler {kinds[0]}, search {kinds[1]}; "
            f"each trial reserves {shown or 'nothing'} (the config's env_runners / learners / "
            f"resources settings)"
            + (f", at most {concurrent} at a time" if concurrent else ""))


def _reached(stop, outcome) -> bool:
    """True when the trial's last result meets one of the ``stop`` criteria (a dict of
    thresholds; any other stop counts as met)."""
    from rllib_ext.cli.progress import lookup

    if not isinstance(stop, dict) or not stop:
        return True
    return any(isinstance(value := lookup(outcome.metrics, key), (int, float))
               and value >= target for key, target in stop.items())


def _print_best(exp, best, metric: str) -> None:
    """The best trial: its searched values, ``metric`` and its best checkpoint."""
    import math

    from rllib_ext.cli import runner
    from rllib_ext.cli.progress import lookup
    from rllib_ext.cli.schema import CHECKPOINT_SCORE_KEY, EVALUATION_SCORE_KEY

    print(f"\nbest trial:  {best.trial_id} ({metric} {lookup(best.metrics, metric):.4g}, "
          f"mode {exp.tune_mode})")
    values = ", ".join(f"{k}={_short(best.config.get(k))}" for k in exp.searched_keys()
                       if k in (best.config or {}))
    print(f"best config: {values or '(no searched keys)'}")
    scoring = exp.checkpoint_scoring()
    if scoring is None:
        key = EVALUATION_SCORE_KEY if exp.evaluation_interval else None
        order, shown_as = "max", exp.evaluation_metric
    else:
        key, order, _ = scoring
        shown_as = exp.tune.get("checkpoint_score_attribute") or (
            exp.evaluation_metric if key == EVALUATION_SCORE_KEY else key)
    if key not in (None, EVALUATION_SCORE_KEY, CHECKPOINT_SCORE_KEY):
        shown_as = key
    found = runner.best_checkpoint(best, key, order)
    if found is None:
        print("best checkpoint: none")
        return
    path, metrics = found
    score = metrics.get(key) if key else None
    detail = (f"{shown_as} {score:.4g}, " if isinstance(score, (int, float))
              and not math.isnan(score) else "latest, ")
    print(f"best checkpoint: {path} ({detail}iteration {metrics.get('training_iteration', '?')})")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def _cmd_evaluate(args) -> int:
    from rllib_ext.cli import runner
    from rllib_ext.cli.evaluation import evaluate_checkpoint

    path = Path(args.checkpoint)
    if not (path / "rllib_checkpoint.json").is_file():
        from rllib_ext.cli.checkpoints import describe, pick, run_checkpoints
        from rllib_ext.cli.schema import EVALUATION_METRIC

        metric = args.metric or EVALUATION_METRIC
        checkpoints = run_checkpoints(path, metric) if path.is_dir() else []
        if not checkpoints:
            raise UsageError(
                f"{path} is not an RLlib algorithm checkpoint (no rllib_checkpoint.json) nor a "
                "run directory with checkpoints; use a path printed by `rllib-ext train`."
            )
        chosen = pick(checkpoints, args.pick)
        if chosen is None:  # best asked for, but no checkpoint was evaluated
            chosen = pick(checkpoints, "last")
            print(f"no checkpoint has {metric}; using the last one")
        print(f"checkpoint: {describe(chosen, metric)}")
        path = Path(chosen.path)
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}.")
    from rllib_ext.cli.evaluation import checkpoint_user_modules

    where = runner.init_ray(args.address, checkpoint_user_modules(path))
    print(f"rllib-ext: evaluating {path} on {where}", flush=True)
    returns, lengths = evaluate_checkpoint(path, num_episodes=args.episodes,
                                           explore=args.explore, gif=args.gif)
    for i, (ret, length) in enumerate(zip(returns, lengths, strict=True)):
        print(f"episode {i:>3}: return {ret:10.3f}  length {length}")
    import numpy as np

    print(f"mean return {np.mean(returns):.3f} ± {np.std(returns):.3f} over {len(returns)} "
          f"{'exploring' if args.explore else 'greedy'} episodes (mean length "
          f"{np.mean(lengths):.1f})")
    if args.gif:
        print(f"gif: {Path(args.gif).resolve()}")
    return EXIT_OK


def _cmd_plot(args) -> int:
    from rllib_ext.cli.plot import plot_run
    from rllib_ext.cli.schema import DEFAULT_METRIC

    if not Path(args.run_dir).is_dir():
        raise UsageError(f"{args.run_dir} is not a directory.")
    try:
        paths = plot_run(args.run_dir, args.out, metric=args.metric or DEFAULT_METRIC)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def _cmd_list(args) -> int:
    from rllib_ext.cli.config_file import list_config_files, load_experiment
    from rllib_ext.cli.schema import ConfigError
    from rllib_ext.registry import ALGORITHMS, ENVIRONMENTS, MULTI_AGENT_ENVIRONMENTS, load

    print("algorithms (Tune name: class):")
    for name, path in ALGORITHMS.items():
        cls = load(path)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<10} {cls.__module__}.{cls.__name__}  {doc}")
    print("environments:")
    for env_id, (entry, _) in ENVIRONMENTS.items():
        print(f"  {env_id:<28} {entry}")
    for env_id, entry in MULTI_AGENT_ENVIRONMENTS.items():
        print(f"  {env_id:<28} {entry}  (multi-agent)")
    if not ENVIRONMENTS:
        print("  (none yet)")
    print("configs (pass criterion):")
    for path in list_config_files():
        try:
            exp = load_experiment(path)
        except ConfigError as e:
            print(f"  {path}: INVALID: {e}")
            continue
        c = exp.criterion
        crit = (f"{c.metric} >= {c.threshold:g} within {c.within_env_steps:,} "
                f"env steps, {c.required}/{len(c.seeds)} seeds") if c else "-"
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"  {shown}  [{exp.algorithm} on {exp.env}]  {crit}")
    return EXIT_OK


def _cmd_check(args) -> int:
    from rllib_ext.cli import runner
    from rllib_ext.cli.config_file import list_config_files, load_experiment
    from rllib_ext.cli.learning_check import check_experiment, format_table

    if args.dry_run:
        return _dry_run(args.configs)
    paths = [p for root in (args.configs or [None]) for p in list_config_files(root)]
    experiments = [load_experiment(p) for p in paths]
    experiments = [e for e in experiments if e.criterion is not None]
    if not experiments:
        raise UsageError("no config with a 'pass' criterion found.")
    modules = [m for exp in experiments for m in exp.shipped_modules()]
    where = runner.init_ray(args.address, list(dict.fromkeys(modules)))
    print(f"rllib-ext: checking {len(experiments)} config(s) on {where}", flush=True)
    rows = []
    for exp in experiments:
        rows.extend(check_experiment(exp, storage=args.storage))
        print(format_table(rows), flush=True)
    ok = all(r.config_passed for r in rows)
    print(f"\n{'ALL PASSED' if ok else 'SOME FAILED'}")
    return EXIT_OK if ok else EXIT_FAILED


def _dry_run(roots: list[str] | None) -> int:
    """``rllib-ext check --dry-run``: one line per file, invalid ones with every reason."""
    from rllib_ext.cli.config_file import list_config_files, list_sweep_files, load_experiment
    from rllib_ext.cli.schema import ConfigError
    from rllib_ext.cli.sweep_check import check_sweep

    if roots:
        paths = [p for root in roots for p in list_config_files(root)]
    else:
        paths = [*list_config_files(), *list_sweep_files()]
    if not paths:
        raise UsageError(f"no config file found in {', '.join(roots or ['configs/'])}.")
    invalid = 0
    for path in paths:
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        try:
            exp = load_experiment(path)
            checked = check_sweep(exp, exp.build_config())
        except ConfigError as e:
            invalid += 1
            print(f"INVALID  {e}")
            continue
        if not checked.ok:
            invalid += 1
            for group in checked.invalid:
                print(f"INVALID  {shown}: {group.describe(checked.points)}")
            continue
        sweep = (f"; sweep: {checked.points} point(s) valid" if exp.searched_keys() else "")
        print(f"ok       {shown}  [{exp.algorithm} on {exp.env}]{sweep}")
    print(f"\n{len(paths)} file(s) checked: "
          + ("all valid" if not invalid else f"{invalid} invalid"))
    return EXIT_USAGE if invalid else EXIT_OK


COMMANDS = {
    "train": _cmd_train,
    "tune": _cmd_tune,
    "evaluate": _cmd_evaluate,
    "plot": _cmd_plot,
    "list": _cmd_list,
    "check": _cmd_check,
}

if __name__ == "__main__":
    sys.exit(main())
