"""Ray start-up and Tune runs shared by the CLI commands (train, tune, check)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rllib_ext
from rllib_ext.cli.experiment import Experiment
from rllib_ext.cli.quiet import RLLIB_LOG_LEVEL
from rllib_ext.cli.schema import DEFAULT_METRIC, EVALUATION_SCORE_KEY, RLLIB_SUPPRESS_HINT
from rllib_ext.core import ray_session

DEFAULT_STORAGE = "tune_runs"
QUIET_HOOK = "rllib_ext.cli.quiet.quiet_worker"
#: What ``rllib-ext train`` / ``tune`` record in a run directory so ``--resume`` can rebuild the
#: run: the command and its arguments (JSON), and a copy of the experiment file.
RUN_RECORD_FILE = "rllib_ext_run.json"
EXPERIMENT_COPY_FILE = "experiment.yaml"


class RayStartError(Exception):
    """Ray could not be started or joined (the CLI prints it as one line and exits 1)."""


#: Seconds to wait for a TCP connection to ``--address`` before giving up: ray.init itself
#: retries an address where no cluster listens for many minutes.
CONNECT_TIMEOUT_S = 5.0


def init_ray(address: str | None = None, user_modules: Sequence[str] = ()) -> str:
    """Connects to ``address`` (or ``$RAY_ADDRESS``), else starts an embedded local Ray.

    On an existing cluster the rllib_ext package is shipped to the workers through the job's
    runtime_env, so nodes need Ray and the dependencies but not rllib_ext itself.
    ``user_modules`` (local ``.py`` files and package folders: the user's env module, see
    :meth:`Experiment.shipped_modules`) are shipped the same way, on a cluster and to the
    embedded Ray's workers, which would not find a module beside the experiment file
    otherwise (Ray gives them the driver's working directory only). A Ray session that is
    already running keeps its own runtime_env. Returns a short description of what was
    started or joined; raises :class:`RayStartError` (one line) when Ray cannot be started or
    the cluster not reached.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    user_modules = list(user_modules)
    shipped = (f", shipping {', '.join(Path(m).name for m in user_modules)} to its workers"
               if user_modules else "")
    if ray.is_initialized():
        description = "the already running Ray session"
    elif address and address != "local":
        _check_reachable(address)
        package_dir = str(Path(rllib_ext.__file__).parent)
        try:
            ray_session.use_cluster_token()
            if _host_port(address):
                ray_session.check_cluster_token(address)
        except ray_session.ClusterAuthError as e:
            raise RayStartError(str(e)) from None
        try:
            ray.init(
                address=address,
                runtime_env={"py_modules": [package_dir, *user_modules],
                             "worker_process_setup_hook": QUIET_HOOK},
                logging_level=logging.ERROR,
            )
        except Exception as e:
            if ray_session.is_auth_refusal(e):
                raise RayStartError(ray_session.refused_message(address)) from e
            raise RayStartError(
                f"cannot join the Ray cluster at {address}: {_first_line(e)} Check --address "
                "(or $RAY_ADDRESS), or give neither for an embedded local Ray."
            ) from e
        description = f"the Ray cluster at {address}{shipped}"
    else:
        try:
            gcs_address = ray_session.init_local_ray(
                include_dashboard=False,
                runtime_env={"worker_process_setup_hook": QUIET_HOOK,
                             **({"py_modules": user_modules} if user_modules else {})},
                logging_level=logging.ERROR,
            )
        except Exception as e:
            raise RayStartError(f"cannot start an embedded local Ray: {_first_line(e)}") from e
        description = (f"an embedded local Ray (a new instance at {gcs_address}, "
                       f"token-protected){shipped}")
    # The registry lives in the cluster's GCS: register again on a fresh one.
    rllib_ext.register()
    return description


def _check_reachable(address: str) -> None:
    """Raises :class:`RayStartError` at once when ``address`` is ``HOST:PORT`` (or
    ``ray://HOST:PORT``) and nothing accepts a connection there within
    :data:`CONNECT_TIMEOUT_S`; other forms (``auto``) are left to ray.init."""
    import socket

    host_port = _host_port(address.removeprefix("ray://"))
    if not host_port:
        return
    try:
        socket.create_connection(host_port, CONNECT_TIMEOUT_S).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise RayStartError(
            f"no Ray cluster at {address} ({reason}). Check --address (or $RAY_ADDRESS): the "
            "head node's HOST:PORT as `ray start --head` prints it, or give neither for an "
            "embedded local Ray."
        ) from None


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` address; None for other forms (``auto``, ``ray://``)."""
    host, sep, port = address.rpartition(":")
    if not (sep and host and port.isdigit()) or "://" in host:
        return None
    return host.strip("[]"), int(port)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else type(error).__name__
    return text if text.endswith(".") else text + "."


def quiet_config(config):
    """The CLI's default RLlib log level, unless the experiment file set one."""
    if config.log_level == "WARN":
        config.debugging(log_level=RLLIB_LOG_LEVEL)
    return config


@dataclass
class TrialOutcome:
    trial_id: str
    path: str
    metrics: dict
    dataframe: object
    error: str | None
    #: False when the run stopped before this trial reached its stop criteria (interrupted,
    #: or not started); ``--resume`` continues it.
    finished: bool = True
    #: The trial's config (its sampled values, PBT's latest mutation included).
    config: dict | None = None
    #: The checkpoints Tune kept, (path, the result they were saved with), and the latest.
    checkpoints: list[tuple[str, dict]] | None = None
    checkpoint: str | None = None


def checkpoint_config(experiment: Experiment, *, tuning: bool = False):
    """Tune's checkpoint settings for ``experiment``: at the end and every ``checkpoint_every``
    iterations; when the config evaluates, on evaluation iterations (every
    ``evaluation_interval`` unless ``checkpoint_every``, a multiple of it, says otherwise),
    keeping only the best by ``experiment.evaluation_metric`` and the last. With ``tuning``,
    the ``tune:`` section's checkpoint keys (``checkpoint_score_attribute``, ``_order``,
    ``num_to_keep``; :meth:`Experiment.checkpoint_scoring`) choose what is kept instead."""
    from ray import tune

    interval = experiment.evaluation_interval
    scoring = experiment.checkpoint_scoring() if tuning else None
    if scoring is not None:
        attribute, order, keep = scoring
        return tune.CheckpointConfig(
            checkpoint_at_end=True,
            checkpoint_frequency=experiment.checkpoint_every or interval,
            checkpoint_score_attribute=attribute,
            checkpoint_score_order=order,
            num_to_keep=keep,  # Tune always keeps the latest as well
        )
    if not interval:
        return tune.CheckpointConfig(checkpoint_at_end=True,
                                     checkpoint_frequency=experiment.checkpoint_every)
    return tune.CheckpointConfig(
        checkpoint_at_end=True,
        checkpoint_frequency=experiment.checkpoint_every or interval,
        # Set by the on_train_result callback that build_config adds (NaN where the
        # iteration did not evaluate, which ranks below every score).
        checkpoint_score_attribute=EVALUATION_SCORE_KEY,
        checkpoint_score_order="max",
        num_to_keep=1,  # the best; Tune always keeps the latest as well
    )


def run(
    experiment: Experiment,
    *,
    param_space,
    stop,
    storage: str | None,
    progress_stop: dict | None = None,
    name_prefix: str = "",
    num_samples: int = 1,
    metric: str = DEFAULT_METRIC,
    record: dict | None = None,
    tune_config=None,
) -> tuple[str, list[TrialOutcome]]:
    """Runs a Tune experiment with one progress line per iteration; returns (dir, outcomes).

    ``tune_config`` (a ``tune.TuneConfig``; :meth:`Experiment.tune_config`) makes it a sweep:
    its samples, scheduler and search algorithm, and the ``tune:`` section's checkpoint keys;
    without it, ``num_samples`` trials of ``param_space``.

    ``stop`` is a Tune stop dict or callable; ``progress_stop`` the targets the progress line
    uses for its ETA (default: ``stop`` when it is a dict). ``record`` (JSON data: the command
    and its arguments) is written to the run directory with a copy of the experiment file,
    for :func:`resume`. Each iteration of a trial is logged once, also after a restore
    (:mod:`rllib_ext.cli.loggers`).
    """
    from ray import tune

    from rllib_ext.cli.loggers import once_per_iteration_loggers
    from rllib_ext.cli.progress import COMPLETED_TRIALS, ProgressPrinter

    storage_path = Path(storage or DEFAULT_STORAGE).resolve()
    name = claim_run_dir(storage_path, f"{name_prefix}{experiment.name}")
    if progress_stop is None:
        progress_stop = stop if isinstance(stop, dict) else {}
    callbacks = [ProgressPrinter(progress_stop, metric), *once_per_iteration_loggers()]
    if record is not None:
        run_dir = storage_path / name
        shutil.copyfile(experiment.path, run_dir / EXPERIMENT_COPY_FILE)
        (run_dir / RUN_RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    tuner = tune.Tuner(
        sweep_trainable(experiment.algorithm_class()) if tune_config is not None
        else experiment.algorithm_class(),
        param_space=param_space,
        # No metric here: Tune would demand it in every result, and evaluation metrics only
        # appear on evaluation iterations. ``metric`` drives the progress line only (a sweep's
        # scheduler and search algorithm carry their own, which every result has: see
        # Experiment.param_space).
        tune_config=tune_config or tune.TuneConfig(num_samples=num_samples),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage_path),
            stop=stop,
            verbose=0,
            callbacks=callbacks,
            checkpoint_config=checkpoint_config(experiment, tuning=tune_config is not None),
        ),
    )
    COMPLETED_TRIALS.clear()
    return str(storage_path / name), _outcomes(tuner.fit())


def claim_run_dir(storage_path: Path, stem: str) -> str:
    """Creates a new run directory ``stem_YYYYmmdd-HHMMSS`` under ``storage_path`` and returns
    its name; ``-2``, ``-3``, ... is appended where that name is taken.

    Created here, atomically, and not left to Tune: two runs started in the same second (the
    seeds of a study launched together) would otherwise share one directory, and with it
    Tune's experiment state and the run record that ``--resume`` and ``evaluate`` read."""
    stamp = f"{stem}_{time.strftime('%Y%m%d-%H%M%S')}"
    storage_path.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        name = stamp if suffix == 1 else f"{stamp}-{suffix}"
        try:
            (storage_path / name).mkdir()
        except FileExistsError:
            suffix += 1
            continue
        return name


@functools.cache
def sweep_trainable(algorithm_class: type) -> type:
    """``algorithm_class`` as the trainable of a sweep, where one trial with an invalid config
    ends alone instead of stopping the sweep.

    Tune asks the trainable for a trial's resources (``default_resource_request``, which
    builds and validates the trial's config) in the driver when it creates the trial; RLlib's
    validation error there stops the whole sweep with a traceback. ``rllib-ext tune`` checks
    the search space before it starts (:mod:`rllib_ext.cli.sweep_check`), but a search
    algorithm may still propose a point it did not check. For such a trial this subclass
    requests Tune's default resources instead; the trial's own set-up then raises the same
    validation error, and Tune ends that trial with it (the summary prints its reason).
    Same name as the algorithm, so trials are named as before."""

    class SweepTrainable(algorithm_class):
        @classmethod
        def default_resource_request(cls, config):
            try:
                return super().default_resource_request(config)
            except ValueError:
                return None

        def __repr__(self):
            # RLlib's __repr__ reads self.config, which is None when set-up failed; Ray calls
            # repr on the actor to report that failure and would report its own crash instead.
            if getattr(self, "config", None) is None:
                return f"{type(self).__name__}(set-up failed)"
            return super().__repr__()

    SweepTrainable.__name__ = algorithm_class.__name__
    SweepTrainable.__qualname__ = f"sweep_trainable({algorithm_class.__qualname__})"
    SweepTrainable.__doc__ = algorithm_class.__doc__
    return SweepTrainable


def read_run_record(run_dir: str | Path) -> dict | None:
    """What :func:`run` recorded in ``run_dir`` (``"command"``, ...) plus ``"experiment_file"``
    (the copy of the experiment file); None if ``run_dir`` holds no such record."""
    run_dir = Path(run_dir)
    try:
        record = json.loads((run_dir / RUN_RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    record["experiment_file"] = str(run_dir / EXPERIMENT_COPY_FILE)
    return record


def resume(experiment: Experiment, run_dir: str | Path,
           param_space: dict | None = None) -> tuple[str, list[TrialOutcome]]:
    """Continues the Tune experiment in ``run_dir`` (``Tuner.restore``): unfinished and errored
    trials go on from their latest checkpoint (from the start if they have none), trials that
    had not started start; stop criteria, checkpointing, callbacks and a sweep's scheduler and
    search algorithm (with the state Tune saved for them) are the run's own.
    ``param_space`` is passed on only when it holds objects that Tune cannot recreate by
    itself (see :func:`~rllib_ext.core.plain_config.plain_config_dict`): with plain data,
    changed defaults in the package do not block the restore. Returns (dir, outcomes)."""
    from ray import tune

    from rllib_ext.cli.progress import COMPLETED_TRIALS

    run_dir = Path(run_dir).resolve()
    algorithm = experiment.algorithm_class()
    sweep = (read_run_record(run_dir) or {}).get("command") == "tune"
    tuner = tune.Tuner.restore(
        str(run_dir), trainable=sweep_trainable(algorithm) if sweep else algorithm,
        param_space=param_space if _needs_resolving(param_space) else None,
        resume_unfinished=True, resume_errored=True)
    COMPLETED_TRIALS.clear()
    return str(run_dir), _outcomes(tuner.fit())


def _needs_resolving(space) -> bool:
    """True if Tune would swap some value of ``space`` for a placeholder (an object other
    than a number, string, bool, None or a search space)."""
    from ray.tune.search.sample import Domain

    if isinstance(space, dict):
        return any(_needs_resolving(v) for v in space.values())
    if isinstance(space, (list, tuple)):
        return any(_needs_resolving(v) for v in space)
    return not (space is None or isinstance(space, (bool, int, float, str, Domain)))


def _outcomes(grid) -> list[TrialOutcome]:
    from rllib_ext.cli.progress import COMPLETED_TRIALS

    def finished(result) -> bool:
        # Completed in this run (Tune's stop criteria or scheduler), or before it (``done``).
        return str(result.path) in COMPLETED_TRIALS or bool((result.metrics or {}).get("done"))

    return [
        TrialOutcome(
            trial_id=Path(result.path).name,
            path=result.path,
            metrics=result.metrics or {},
            dataframe=result.metrics_dataframe,
            error=None if result.error is None else _error_message(result.error),
            finished=finished(result),
            config=dict(result.config or {}),
            checkpoints=[(c.path, metrics or {}) for c, metrics in result.best_checkpoints or []],
            checkpoint=None if result.checkpoint is None else result.checkpoint.path,
        )
        for result in grid
    ]


def best_outcome(outcomes: list[TrialOutcome], metric: str, mode: str) -> TrialOutcome | None:
    """The trial whose last result ranks first by ``metric`` (Tune's ``scope="last"``);
    None if no trial reported a number for it."""
    import math

    from rllib_ext.cli.progress import lookup

    scored = [(value, o) for o in outcomes
              if isinstance(value := lookup(o.metrics, metric), (int, float))
              and not isinstance(value, bool) and not math.isnan(value)]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pair: pair[0])[1]


def best_checkpoint(outcome: TrialOutcome, attribute: str | None,
                    order: str = "max") -> tuple[str, dict] | None:
    """(path, metrics) of the trial's best kept checkpoint by the top-level result key
    ``attribute`` (NaN and missing scores rank last, as in Tune); the latest without an
    ``attribute`` or a score."""
    import math

    checkpoints = outcome.checkpoints or []
    scored = [(c, m) for c, m in checkpoints if attribute is not None
              and isinstance(m.get(attribute), (int, float)) and not math.isnan(m[attribute])]
    if scored:
        pick = max if order == "max" else min
        return pick(scored, key=lambda pair: pair[1][attribute])
    if outcome.checkpoint is not None:
        return next(((c, m) for c, m in checkpoints if c == outcome.checkpoint),
                    (outcome.checkpoint, {}))
    return checkpoints[-1] if checkpoints else None


def _error_message(error: BaseException) -> str:
    """The innermost message of a trial error (Ray wraps it in RayTaskError layers)."""
    cause = getattr(error, "cause", None) or error.__cause__
    while cause is not None and (getattr(cause, "cause", None) or cause.__cause__) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    inner = cause or error
    text = str(inner).split(RLLIB_SUPPRESS_HINT)[0]  # a validation error's reason and fix
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else ""
    # An actor that died in its set-up ends its text with the original "ValueError: ...".
    if re.match(r"[A-Za-z_][\w.]*(Error|Exception): ", last):
        return last
    return f"{type(inner).__name__}: {last}"
