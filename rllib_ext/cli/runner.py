"""Ray start-up and Tune runs shared by the CLI commands (train, tune, check)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import rllib_ext
from rllib_ext.cli.config_file import DEFAULT_METRIC, EVALUATION_SCORE_KEY, Experiment
from rllib_ext.cli.quiet import RLLIB_LOG_LEVEL

DEFAULT_STORAGE = "tune_runs"
QUIET_HOOK = "rllib_ext.cli.quiet.quiet_worker"


def init_ray(address: str | None = None) -> str:
    """Connects to ``address`` (or ``$RAY_ADDRESS``), else starts an embedded local Ray.

    On an existing cluster the rllib_ext package is shipped to the workers through the job's
    runtime_env, so nodes need Ray and the dependencies but not rllib_ext itself. Returns a short
    description of what was started or joined.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        description = "the already running Ray session"
    elif address:
        package_dir = str(Path(rllib_ext.__file__).parent)
        ray.init(
            address=address,
            runtime_env={"py_modules": [package_dir], "worker_process_setup_hook": QUIET_HOOK},
            logging_level=logging.ERROR,
        )
        description = f"the Ray cluster at {address}"
    else:
        # A private, embedded cluster: no token needed (Ray would otherwise write one to ~/.ray).
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
            # "local": a new instance even when a `ray start` cluster runs on this machine
            # (a bare ray.init() would join it).
            address="local",
            include_dashboard=False,
            runtime_env={"worker_process_setup_hook": QUIET_HOOK},
            logging_level=logging.ERROR,
        )
        description = "an embedded local Ray"
    # The registry lives in the cluster's GCS: register again on a fresh one.
    rllib_ext.register()
    return description


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


def checkpoint_config(experiment: Experiment):
    """Tune's checkpoint settings for ``experiment``: at the end and every ``checkpoint_every``
    iterations; when the config evaluates, on evaluation iterations (every
    ``evaluation_interval`` unless ``checkpoint_every``, a multiple of it, says otherwise),
    keeping only the best by ``experiment.evaluation_metric`` and the last."""
    from ray import tune

    interval = experiment.evaluation_interval
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
    name: str | None = None,
    num_samples: int = 1,
    metric: str = DEFAULT_METRIC,
) -> tuple[str, list[TrialOutcome]]:
    """Runs a Tune experiment with one progress line per iteration; returns (dir, outcomes).

    ``stop`` is a Tune stop dict or callable; ``progress_stop`` the targets the progress line
    uses for its ETA (default: ``stop`` when it is a dict).
    """
    from ray import tune

    from rllib_ext.cli.progress import ProgressPrinter

    storage_path = Path(storage or DEFAULT_STORAGE).resolve()
    name = name or f"{experiment.name}_{time.strftime('%Y%m%d-%H%M%S')}"
    if progress_stop is None:
        progress_stop = stop if isinstance(stop, dict) else {}
    callbacks = [ProgressPrinter(progress_stop, metric)]
    tuner = tune.Tuner(
        experiment.algorithm_class(),
        param_space=param_space,
        # No metric here: Tune would demand it in every result, and evaluation metrics only
        # appear on evaluation iterations. ``metric`` drives the progress line only.
        tune_config=tune.TuneConfig(num_samples=num_samples),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage_path),
            stop=stop,
            verbose=0,
            callbacks=callbacks,
            checkpoint_config=checkpoint_config(experiment),
        ),
    )
    grid = tuner.fit()
    outcomes = []
    for result in grid:
        outcomes.append(
            TrialOutcome(
                trial_id=Path(result.path).name,
                path=result.path,
                metrics=result.metrics or {},
                dataframe=result.metrics_dataframe,
                error=None if result.error is None else _error_message(result.error),
            )
        )
    return str(storage_path / name), outcomes


def _error_message(error: BaseException) -> str:
    """The innermost message of a trial error (Ray wraps it in RayTaskError layers)."""
    cause = getattr(error, "cause", None) or error.__cause__
    while cause is not None and (getattr(cause, "cause", None) or cause.__cause__) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    inner = cause or error
    lines = [ln for ln in str(inner).strip().splitlines() if ln.strip()]
    return f"{type(inner).__name__}: {lines[-1] if lines else ''}"
