"""One clean progress line per training iteration (a Tune callback)."""

from __future__ import annotations

import math
import sys
import time

from ray.tune import Callback

from rllib_ext.cli.schema import DEFAULT_METRIC as TRAIN_RETURN_KEY
from rllib_ext.cli.schema import ENV_STEPS_KEY

#: Directories of the trials Tune completed (its stop criteria or its scheduler stopped them)
#: in the latest run in this process; written by :class:`ProgressPrinter` (a callback runs in
#: the driver). Not the trials an interrupt stopped: Tune resumes those. A trial completed
#: here counts as finished even where its last result lacks ``done`` (a scheduler's stop
#: right after a restore can leave it out).
COMPLETED_TRIALS: set[str] = set()


def lookup(result: dict, key: str, default=None):
    """``result["a"]["b"]`` for ``key="a/b"`` (Tune results are nested dicts)."""
    node = result
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def projected_env_steps(result: dict, target: float) -> int | None:
    """The env steps a run stopped at ``target`` env steps will really end at: Tune stops
    after the iteration that reaches the target, and RLlib does not cut that iteration, so
    the run ends on a whole number of iterations (e.g. 2,000 for a 1,500 stop with 1,000-step
    iterations). Estimated from the mean env steps per iteration so far; None before the
    first iteration."""
    steps = lookup(result, ENV_STEPS_KEY, 0) or 0
    iterations = result.get("training_iteration") or 0
    if steps <= 0 or iterations <= 0:
        return None
    if steps >= target:
        return int(steps)
    per_iteration = steps / iterations
    return int(round(steps + math.ceil((target - steps) / per_iteration) * per_iteration))


def eta_seconds(result: dict, stop: dict) -> float | None:
    """Time left until the first ``stop`` target is reached, extrapolating the average pace
    (for env steps, to the end of the iteration that reaches the target)."""
    elapsed = result.get("time_total_s") or 0.0
    best = None
    for key, target in stop.items():
        if key == ENV_STEPS_KEY:
            target = projected_env_steps(result, target) or target
        current = lookup(result, key)
        if not isinstance(current, (int, float)) or current <= 0 or elapsed <= 0:
            continue
        remaining = elapsed * max(0.0, target / current - 1.0)
        best = remaining if best is None else min(best, remaining)
    return best


def _number(value) -> str:
    return f"{value:8.2f}" if isinstance(value, (int, float)) else "     n/a"


def format_line(result: dict, stop: dict, metric: str, prefix: str = "") -> str:
    """``iter | env steps | return | [metric] | steps/s | ETA``; the tracked metric is shown
    separately when it is not the training return (e.g. an evaluation metric). With an env
    steps stop that whole iterations overshoot, the steps say where the run will really end:
    ``env steps 1,000/1,500 (ends at ~2,000: whole iterations)``, and at the end ``env steps
    2,000/1,500 (stop reached)``."""
    steps = lookup(result, ENV_STEPS_KEY, 0) or 0
    target = stop.get(ENV_STEPS_KEY)
    steps_text = f"env steps {int(steps):,}"
    if target:
        steps_text += f"/{int(target):,}"
        projected = projected_env_steps(result, target)
        if steps >= target:
            steps_text += " (stop reached)"
        elif projected is not None and projected > target:
            steps_text += f" (ends at ~{projected:,}: whole iterations)"
    dt = result.get("time_this_iter_s") or 0.0
    steps_this_iter = lookup(result, "env_runners/num_env_steps_sampled", 0) or 0
    parts = [
        f"iter {result.get('training_iteration', 0):>4}",
        steps_text,
        f"return {_number(lookup(result, TRAIN_RETURN_KEY))}",
    ]
    if metric != TRAIN_RETURN_KEY and lookup(result, metric) is not None:
        parts.append(f"{metric} {_number(lookup(result, metric))}")
    if dt > 0:
        parts.append(f"{steps_this_iter / dt:,.0f} steps/s")
    eta = eta_seconds(result, stop)
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return prefix + " | ".join(parts)


class ProgressPrinter(Callback):
    """Prints ``iter | env steps | return | steps/s | ETA`` once per iteration of each trial."""

    def __init__(self, stop: dict, metric: str):
        self.stop = stop
        self.metric = metric
        self._multi = False
        self._t0 = time.time()

    def _print(self, text: str) -> None:
        # sys.stdout is looked up at print time: Tune pickles its callbacks, streams can't be.
        print(text, file=sys.stdout, flush=True)

    def _prefix(self, trial) -> str:
        if not self._multi:
            return ""
        seed = (trial.config or {}).get("seed")
        return f"[{trial.trial_id}{'' if seed is None else f' seed={seed}'}] "

    def on_trial_start(self, iteration, trials, trial, **info):
        self._multi = self._multi or len(trials) > 1
        self._print(f"{self._prefix(trial)}trial {trial.trial_id} started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._multi = self._multi or len(trials) > 1
        self._print(format_line(result, self.stop, self.metric, self._prefix(trial)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        COMPLETED_TRIALS.add(str(trial.path))
        self._print(
            f"{self._prefix(trial)}trial {trial.trial_id} finished after "
            f"{format_duration(time.time() - self._t0)}"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(f"{self._prefix(trial)}trial {trial.trial_id} FAILED (error below)")
