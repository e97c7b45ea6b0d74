"""Tune's result loggers (progress.csv, result.json, TensorBoard) logging each training
iteration of a trial once, also across ``Tuner.restore``.

A restored trial goes on from its latest checkpoint, and Tune logs a result before it saves
that iteration's checkpoint: the iterations reported after the last checkpoint that was
saved (all of them when ``checkpoint_frequency`` > 1 and the run stopped between two
checkpoints, or just the last one when it stopped while the checkpoint was being written) are
trained again and Tune's own loggers, which append, record them a second time. These loggers
skip a result whose ``training_iteration`` a trial already logged: the rows on disk keep the
first run's results up to where it stopped, and the restored run's from there on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.result import EXPR_RESULT_FILE, TRAINING_ITERATION


def last_logged_iteration(trial_dir: str | Path) -> int | None:
    """The ``training_iteration`` of the last complete line of a trial's result.json, or
    None (no file, no complete line). Reads the file from its end."""
    path = Path(trial_dir, EXPR_RESULT_FILE)
    try:
        f = path.open("rb")
    except OSError:
        return None
    with f:
        end = f.seek(0, os.SEEK_END)
        tail, block = b"", 1 << 16
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            tail = f.read(end - start) + tail
            end = start
            # Complete lines only: the last one may have been cut by a crash.
            lines = tail.split(b"\n")
            for line in reversed(lines[1:] if end > 0 else lines):
                try:
                    return int(json.loads(line)[TRAINING_ITERATION])
                except (ValueError, KeyError, TypeError):
                    continue
    return None


class _OncePerIteration:
    """Logs a trial's result only when its ``training_iteration`` is past the last one logged.

    When a trial starts (also when it is restored) the last one logged is read from its
    result.json: Tune's own record, the trial's ``last_result``, is reset to the restored
    checkpoint's result."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._logged_up_to: dict[str, int | None] = {}

    def log_trial_start(self, trial):
        if trial.trial_id not in self._logged_up_to:
            self._logged_up_to[trial.trial_id] = last_logged_iteration(trial.local_path)
        super().log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict):
        current = result.get(TRAINING_ITERATION)
        last = self._logged_up_to.get(trial.trial_id)
        if current is not None and last is not None and current <= last:
            return
        self._logged_up_to[trial.trial_id] = current
        super().log_trial_result(iteration, trial, result)


class CSVLogger(_OncePerIteration, CSVLoggerCallback):
    """Tune's progress.csv logger, one row per training iteration."""


class JsonLogger(_OncePerIteration, JsonLoggerCallback):
    """Tune's result.json logger, one line per training iteration."""


class TBXLogger(_OncePerIteration, TBXLoggerCallback):
    """Tune's TensorBoard logger, one point per training iteration."""


def once_per_iteration_loggers() -> list:
    """The three loggers above, for a ``RunConfig``'s callbacks (Tune then adds none of its
    own; the TensorBoard one is left out when tensorboardX is missing)."""
    loggers = [CSVLogger(), JsonLogger()]
    try:
        loggers.append(TBXLogger())
    except ImportError:
        pass
    return loggers
