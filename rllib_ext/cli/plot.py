"""``rllib-ext plot RUN_DIR``: learning curves from Tune's result files as PNGs."""

from __future__ import annotations

import csv
import json
import math
import numbers
from pathlib import Path

from rllib_ext.cli.schema import DEFAULT_METRIC, ENV_STEPS_KEY, EVALUATION_METRIC

#: Reported by RLlib only in the iterations that ran an evaluation.
EVALUATION_MARKER_KEY = "evaluation/num_healthy_workers"
#: Learner metrics drawn in ``learner_metrics.png`` when present (any module).
LEARNER_METRIC_SUFFIXES = ("loss", "entropy", "gradient_norm", "mean_advantage")
#: ACE's per-action-dimension causal weights (``ace/causal_weight_<i>``), drawn in
#: ``causal_weights.png`` when present.
CAUSAL_WEIGHT_PREFIX = "ace/causal_weight_"


def find_progress_files(run_dir: str | Path) -> list[Path]:
    """Every trial's results under an experiment dir (or in one trial dir): its
    ``result.json`` where Tune wrote one, else its ``progress.csv``."""
    trials = sorted({p.parent for name in ("result.json", "progress.csv")
                     for p in Path(run_dir).rglob(name)})
    return [results_file(t) for t in trials]


def results_file(trial_dir: Path) -> Path:
    """A trial directory's ``result.json``, or its ``progress.csv`` if Tune wrote no JSON."""
    return trial_dir / "result.json" if (trial_dir / "result.json").is_file() else (
        trial_dir / "progress.csv")


def read_progress(path: Path) -> dict[str, list[float]]:
    """Numeric columns of a trial's results, one value per iteration (NaN where an iteration
    lacks the key or the value is not a number).

    ``result.json`` (one JSON result per line) is read when given: Tune fixes the columns of
    ``progress.csv`` at the first iteration, so metrics that appear later — RLlib's evaluation
    results when the first iteration does not evaluate — are only in ``result.json``.
    """
    if path.suffix == ".json":
        rows = [_flatten(json.loads(line)) for line in path.read_text().splitlines() if line]
    else:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {key: [_number(row.get(key)) for row in rows] for key in keys}


def _flatten(result: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _number(value) -> float:
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _label(path: Path, run_dir: Path) -> str:
    rel = path.parent.relative_to(run_dir) if path.parent != run_dir else Path(path.parent.name)
    return str(rel)[:40]


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None,
             metric: str = DEFAULT_METRIC) -> list[Path]:
    """Writes ``returns.png`` (metric vs env steps, one line per trial, with the evaluation
    return as markers on the same axes when the run evaluated); if the learners
    reported any, ``learner_metrics.png`` (losses, entropy, gradient norm); for ACE runs,
    ``causal_weights.png`` (one panel per trial, one line per action dimension). Returns the
    paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    files = find_progress_files(run_dir)
    if not files:
        raise FileNotFoundError(
            f"no result.json or progress.csv under {run_dir}; pass an experiment or trial "
            "directory "
            "written by `rllib-ext train` or `rllib-ext tune` (e.g. tune_runs/<experiment>)."
        )
    out_dir = Path(out_dir) if out_dir else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [(_label(f, run_dir), read_progress(f)) for f in files]
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    evaluated = False
    for label, cols in runs:
        if ENV_STEPS_KEY not in cols:
            continue
        color = None
        if metric in cols:
            (line,) = ax.plot(cols[ENV_STEPS_KEY], cols[metric], label=label)
            color = line.get_color()
        points = evaluation_points(cols) if metric != EVALUATION_METRIC else []
        if points:  # the evaluations (greedy, by default) on the same axes, one marker each
            evaluated = True
            ax.plot(*zip(*points, strict=True), "o--", color=color, markersize=5,
                    linewidth=0.8, label=f"{label} (evaluation)")
    if evaluated:
        ax.set_title(f"{run_dir.name}: {metric}; markers: evaluation", fontsize=9)
    else:
        ax.set_title(f"{run_dir.name}: {metric}")
    ax.set_xlabel("env steps")
    ax.set_ylabel(metric.split("/")[-1])
    ax.grid(alpha=0.3)
    if len(runs) > 1 or evaluated:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "returns.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    learner_keys = sorted(
        {
            k
            for _, cols in runs
            for k in cols
            if k.startswith("learners/")
            and not k.startswith("learners/__all_modules__")
            and k.endswith(LEARNER_METRIC_SUFFIXES)
        }
    )
    if learner_keys:
        ncols = 2
        nrows = math.ceil(len(learner_keys) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3 * nrows), squeeze=False)
        for ax, key in zip(axes.flat, learner_keys, strict=False):
            for label, cols in runs:
                if key in cols and ENV_STEPS_KEY in cols:
                    ax.plot(cols[ENV_STEPS_KEY], cols[key], label=label)
            ax.set_title(key.removeprefix("learners/"), fontsize=9)
            ax.set_xlabel("env steps", fontsize=8)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(learner_keys):]:
            ax.set_visible(False)
        fig.tight_layout()
        path = out_dir / "learner_metrics.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    weighted = [(label, cols, _causal_weight_keys(cols)) for label, cols in runs]
    weighted = [(label, cols, keys) for label, cols, keys in weighted
                if keys and ENV_STEPS_KEY in cols]
    if weighted:
        fig, axes = plt.subplots(len(weighted), 1, figsize=(7, 3 * len(weighted)),
                                 squeeze=False)
        for ax, (label, cols, keys) in zip(axes.flat, weighted, strict=True):
            for key in keys:
                ax.plot(cols[ENV_STEPS_KEY], cols[key],
                        label=f"a_{key.removeprefix(CAUSAL_WEIGHT_PREFIX)}")
            ax.set_title(f"{label}: causal weights", fontsize=9)
            ax.set_xlabel("env steps", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=min(len(keys), 6))
        fig.tight_layout()
        path = out_dir / "causal_weights.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def evaluated_rows(cols: dict[str, list[float]]) -> list[bool]:
    """Per iteration: did it run an evaluation? RLlib repeats the last evaluation's results in
    the iteration after it (and its lifetime counters move there too), but only an iteration
    that evaluated reports the evaluation workers' health (``evaluation/num_healthy_workers``)."""
    marker = cols.get(EVALUATION_MARKER_KEY)
    if marker is None:  # no such column: every row with an evaluation metric
        return [not math.isnan(v) for v in cols.get(EVALUATION_METRIC, [])]
    return [not math.isnan(v) for v in marker]


def evaluation_points(cols: dict[str, list[float]],
                      metric: str = EVALUATION_METRIC) -> list[tuple[float, float]]:
    """(env steps, ``metric``) of the iterations that evaluated."""
    if ENV_STEPS_KEY not in cols or metric not in cols:
        return []
    return [(x, y) for x, y, evaluated in zip(cols[ENV_STEPS_KEY], cols[metric],
                                              evaluated_rows(cols), strict=False)
            if evaluated and not math.isnan(y)]


def _causal_weight_keys(cols: dict[str, list[float]]) -> list[str]:
    """``ace/causal_weight_<i>`` columns in dimension order (0, 1, ..., 10, not 0, 1, 10)."""
    keys = [k for k in cols if k.startswith(CAUSAL_WEIGHT_PREFIX)
            and k.removeprefix(CAUSAL_WEIGHT_PREFIX).isdigit()]
    return sorted(keys, key=lambda k: int(k.removeprefix(CAUSAL_WEIGHT_PREFIX)))
