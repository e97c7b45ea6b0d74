"""A run's checkpoints and which one to use: the best by an evaluation metric, or the last.

``rllib-ext train`` runs keep two checkpoints when the config evaluates (Tune's checkpoint
scoring on ``evaluation_score``, ``num_to_keep=1`` plus the latest, which Tune always keeps):
the best by the evaluation metric and the last. Both ``train`` and ``evaluate RUN_DIR`` find
them on disk, so any Tune run of an RLlib algorithm works: each ``checkpoint_*`` directory
records the algorithm's ``training_iteration`` (``algorithm_state.pkl``), and that iteration's
result in the trial's ``result.json`` holds the metrics it was saved with.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

from rllib_ext.cli.plot import evaluated_rows, find_progress_files, read_progress, results_file
from rllib_ext.cli.schema import ENV_STEPS_KEY

CHOICES = ("best", "last")
#: Result key of the episode count of RLlib's evaluation runs.
EVALUATION_EPISODES_KEY = "evaluation/env_runners/num_episodes"
#: RLlib's algorithm state file in a checkpoint (``Checkpointable``, format 2.x).
ALGORITHM_STATE_FILE = "algorithm_state.pkl"


@dataclass
class CheckpointInfo:
    path: str
    iteration: int
    env_steps: int
    #: The metric at the checkpoint's iteration; None when that iteration did not evaluate
    #: (RLlib repeats the previous evaluation's results there; they do not score it).
    score: float | None


def _number(column: list[float] | None, row: int | None) -> float | None:
    if column is None or row is None or math.isnan(column[row]):
        return None
    return column[row]


def trial_checkpoints(trial_dir: str | Path, metric: str) -> list[CheckpointInfo]:
    """The checkpoints of one trial directory, oldest first."""
    trial_dir = Path(trial_dir)
    progress = read_progress(results_file(trial_dir))
    iterations = progress.get("training_iteration", [])
    evaluated = evaluated_rows(progress)
    found = []
    for directory in sorted(trial_dir.glob("checkpoint_*")):
        state_file = directory / ALGORITHM_STATE_FILE
        if not state_file.is_file():
            continue
        with state_file.open("rb") as f:
            iteration = int(pickle.load(f)["training_iteration"])
        row = next((i for i, it in enumerate(iterations) if it == iteration), None)
        found.append(CheckpointInfo(
            path=str(directory),
            iteration=iteration,
            env_steps=int(_number(progress.get(ENV_STEPS_KEY), row) or 0),
            score=_number(progress.get(metric), row)
            if row is not None and row < len(evaluated) and evaluated[row] else None,
        ))
    return sorted(found, key=lambda c: c.iteration)


def last_evaluation(trial_dir: str | Path, metric: str) -> tuple[int, float, float] | None:
    """(env steps, ``metric``, episodes) of a trial's last iteration that evaluated, or None."""
    cols = read_progress(results_file(Path(trial_dir)))
    rows = [i for i, evaluated in enumerate(evaluated_rows(cols)) if evaluated]
    rows = [i for i in rows if _number(cols.get(metric), i) is not None]
    if not rows:
        return None
    i = rows[-1]
    episodes = _number(cols.get(EVALUATION_EPISODES_KEY), i)
    return (int(_number(cols.get(ENV_STEPS_KEY), i) or 0), _number(cols.get(metric), i),
            math.nan if episodes is None else episodes)


def run_checkpoints(run_dir: str | Path, metric: str) -> list[CheckpointInfo]:
    """Every checkpoint under an experiment directory (all trials) or one trial directory."""
    trials = [p.parent for p in find_progress_files(run_dir)]
    return [c for trial in trials for c in trial_checkpoints(trial, metric)]


def pick(checkpoints: list[CheckpointInfo], which: str) -> CheckpointInfo | None:
    """``"best"``: the highest score (None if no checkpoint was evaluated); ``"last"``: the
    latest iteration."""
    if which == "last":
        return max(checkpoints, key=lambda c: c.iteration, default=None)
    scored = [c for c in checkpoints if c.score is not None]
    return max(scored, key=lambda c: (c.score, c.iteration), default=None)


def describe(checkpoint: CheckpointInfo, metric: str) -> str:
    score = "" if checkpoint.score is None else f"{metric} {checkpoint.score:.3f}, "
    return (f"{checkpoint.path} ({score}iteration {checkpoint.iteration}, "
            f"{checkpoint.env_steps:,} env steps)")


def final_evaluation(trial_dir: str | Path, experiment) -> dict | None:
    """The experiment's ``final_evaluation`` of one finished trial: its chosen checkpoint
    (the best by the evaluation metric, or the last; the last when none was scored) evaluated
    greedily over the configured number of episodes, on a fresh env runner. Written to
    ``FINAL_EVALUATION_FILE`` in the trial directory and returned as ``{"checkpoint", "which",
    "iteration", "env_steps", "score", "episodes", "episode_return_mean"}``; None without a
    ``final_evaluation`` section or a checkpoint. Needs a running Ray."""
    import json

    import numpy as np

    from rllib_ext.cli.evaluation import evaluate_checkpoint
    from rllib_ext.cli.schema import FINAL_EVALUATION_FILE

    spec = experiment.final_evaluation
    if spec is None:
        return None
    checkpoints = trial_checkpoints(trial_dir, experiment.evaluation_metric)
    chosen = pick(checkpoints, spec["checkpoint"])
    which = spec["checkpoint"]
    if chosen is None:
        chosen, which = pick(checkpoints, "last"), "last"
    if chosen is None:
        return None
    returns, _ = evaluate_checkpoint(chosen.path, num_episodes=spec["episodes"])
    record = {"checkpoint": chosen.path, "which": which, "iteration": chosen.iteration,
              "env_steps": chosen.env_steps, "score": chosen.score,
              "episodes": len(returns), "episode_return_mean": float(np.mean(returns))}
    (Path(trial_dir) / FINAL_EVALUATION_FILE).write_text(json.dumps(record, indent=1))
    return record


def describe_final_evaluation(record: dict) -> str:
    """One line: which checkpoint was evaluated and what it scored."""
    picked = f"{record['which']} checkpoint, iteration {record['iteration']}, " \
             f"{record['env_steps']:,} env steps"
    if record["score"] is not None:
        picked += f", chosen by its {record['score']:.3f} during training"
    return (f"final evaluation: episode_return_mean {record['episode_return_mean']:.3f} over "
            f"{record['episodes']:,} greedy episodes ({picked})")
