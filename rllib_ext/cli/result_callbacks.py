"""Callbacks the CLI adds to an experiment's algorithm config: the evaluation score that
checkpoints are ranked by, the Tune metrics every trial must report, and the torch thread cap
for RLlib's built-in algorithms."""

from __future__ import annotations

import math

from rllib_ext.cli.progress import lookup
from rllib_ext.cli.schema import CHECKPOINT_SCORE_KEY, EVALUATION_SCORE_KEY


def cap_torch_threads(config) -> None:
    """RLlib's built-in algorithms get rllib_ext's torch-thread cap through ``on_algorithm_init``
    (ours apply it in ``setup()``); a callback set in the file is kept and runs first."""
    from rllib_ext.core.threads import limit_torch_threads_on_init

    if type(config).__module__.startswith("rllib_ext."):
        return
    append_callback(config, "on_algorithm_init", limit_torch_threads_on_init)


def append_callback(config, event: str, callback) -> None:
    """Appends ``callback`` to the config's ``event`` callbacks (e.g. ``"on_train_result"``);
    one set in the file is kept and runs first."""
    existing = getattr(config, f"callbacks_{event}")
    if existing is None:
        existing = []
    elif callable(existing):
        existing = [existing]
    config.callbacks(**{event: [*existing, callback]})


def record_evaluation_score(*, result: dict, metric: str, **_) -> None:
    """``on_train_result``: sets ``result[EVALUATION_SCORE_KEY]`` (see there). An iteration
    evaluated if its evaluation results carry the evaluation workers' health
    (``num_healthy_workers``); RLlib's repeated results do not."""
    evaluation = result.get("evaluation")
    value = math.nan
    if isinstance(evaluation, dict) and "num_healthy_workers" in evaluation:
        node = result
        for part in metric.split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            value = float(node)
    result[EVALUATION_SCORE_KEY] = value


def iteration_value(result: dict, metric: str) -> float:
    """``metric``'s number in ``result`` (NaN if absent); an evaluation metric only in an
    iteration that evaluated (see :func:`record_evaluation_score`)."""
    if metric.startswith("evaluation/"):
        evaluation = result.get("evaluation")
        if not (isinstance(evaluation, dict) and "num_healthy_workers" in evaluation):
            return math.nan
    value = lookup(result, metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def record_tune_metrics(*, result: dict, metric: str, score_metric: str | None = None,
                        **_) -> None:
    """``on_train_result`` of ``rllib-ext tune`` trials: sets ``metric`` to NaN where RLlib
    has not reported it yet (e.g. before the first episode ended; Tune's schedulers and search
    algorithms raise on a result without it and pass over NaN), and, for a nested
    ``score_metric`` (``tune.checkpoint_score_attribute``), ``result[CHECKPOINT_SCORE_KEY]``
    to its :func:`iteration_value`."""
    if lookup(result, metric) is None:
        *sections, name = metric.split("/")
        node = result
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[name] = math.nan
    if score_metric and "/" in score_metric:
        result[CHECKPOINT_SCORE_KEY] = iteration_value(result, score_metric)
