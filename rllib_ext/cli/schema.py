"""The experiment file's schema: its keys, the Tune choices it may name, the result keys the CLI
adds, :class:`ConfigError` and :class:`PassCriterion`, and the small helpers every check uses.
(The file format itself: :mod:`rllib_ext.cli.config_file`.)"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

TOP_LEVEL_KEYS = (
    "algorithm",
    "env",
    "env_config",
    "config",
    "stop",
    "checkpoint_every",
    "final_evaluation",
    "pass",
    "tune",
    "description",
)


PASS_KEYS = ("metric", "threshold", "within_env_steps", "seeds", "min_passing", "min_mean")


TUNE_KEYS = ("num_samples", "metric", "mode", "param_space", "scheduler", "search_alg",
             "max_concurrent_trials", "checkpoint_score_attribute", "checkpoint_score_order",
             "num_to_keep")


SEARCH_SPACES = ("grid_search", "choice", "uniform", "loguniform", "randint", "quniform")


#: ``tune.scheduler`` types -> their keys besides ``type`` (Tune's FIFOScheduler,
#: ASHAScheduler, MedianStoppingRule, PopulationBasedTraining).
SCHEDULERS = {
    "fifo": (),
    "asha": ("time_attr", "max_t", "grace_period", "reduction_factor", "brackets"),
    "median_stopping": ("time_attr", "grace_period", "min_samples_required", "min_time_slice",
                        "hard_stop"),
    "pbt": ("time_attr", "perturbation_interval", "burn_in_period", "hyperparam_mutations",
            "quantile_fraction", "resample_probability", "perturbation_factors", "synch"),
}


#: ``tune.search_alg`` types -> their keys besides ``type``. random and grid are Tune's
#: BasicVariantGenerator; optuna and hyperopt need the optional extra (``.[tune]``).
SEARCH_ALGS = {
    "random": ("seed",),
    "grid": (),
    "optuna": ("seed",),
    "hyperopt": ("seed", "n_initial_points"),
}


#: Search algorithms of the optional extra ``.[tune]`` -> the package each imports.
EXTRA_SEARCH_ALGS = {"optuna": "optuna", "hyperopt": "hyperopt"}


#: Result keys a scheduler's ``time_attr`` may name (in every RLlib result).
TIME_ATTRS = ("training_iteration", "num_env_steps_sampled_lifetime", "time_total_s")


#: ``stop`` keys that count env steps (used for ETA and the pass criterion).
ENV_STEPS_KEY = "num_env_steps_sampled_lifetime"


#: Top-level result keys a ``stop`` may name (Tune's and RLlib's counters).
STOP_KEYS = (ENV_STEPS_KEY, "training_iteration", "time_total_s", "num_episodes_lifetime",
             "num_env_steps_trained_lifetime", "num_agent_steps_sampled_lifetime",
             "timesteps_total", "episodes_total")


#: Result sections a nested ``stop`` key ("section/.../metric") may start with.
STOP_SECTIONS = ("env_runners", "evaluation", "learners", "timers", "fault_tolerance")


DEFAULT_METRIC = "env_runners/episode_return_mean"


#: What RLlib appends to every validation error (the reason and the fix come before it).
RLLIB_SUPPRESS_HINT = "\nTo suppress all validation errors"


#: RLlib's (greedy, by default) evaluation return: what a run's best checkpoint is scored by.
EVALUATION_METRIC = "evaluation/env_runners/episode_return_mean"


#: Top-level result key the CLI adds to every result of a config that evaluates: the evaluation
#: metric in iterations that evaluated, NaN otherwise. Tune's checkpoint scoring needs a
#: top-level key (it looks the attribute up in the unflattened result), and RLlib repeats an
#: evaluation's results in the iteration after it, which must not score that iteration.
EVALUATION_SCORE_KEY = "evaluation_score"


#: Top-level result key ``rllib-ext tune`` adds when ``tune.checkpoint_score_attribute`` is a
#: nested metric ("section/.../name"): its value (NaN where absent; an evaluation metric only
#: in iterations that evaluated), since Tune scores checkpoints by top-level keys only.
CHECKPOINT_SCORE_KEY = "checkpoint_score"


#: Keys of the ``final_evaluation:`` section.
FINAL_EVALUATION_KEYS = ("checkpoint", "episodes")


#: The ``pass.metric`` that scores each seed by its final evaluation (not by a result metric).
FINAL_EVALUATION_METRIC = "final_evaluation/episode_return_mean"


#: File (in the trial's directory) that holds a run's final evaluation.
FINAL_EVALUATION_FILE = "final_evaluation.json"


class ConfigError(ValueError):
    """A mistake in an experiment file; the message says what and how to fix it."""


@dataclass
class PassCriterion:
    metric: str
    threshold: float
    within_env_steps: int
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    min_passing: int | None = None
    #: Optional bar on the mean over seeds of the metric's value when each trial stopped.
    min_mean: float | None = None

    @property
    def required(self) -> int:
        return len(self.seeds) if self.min_passing is None else self.min_passing


def typed(raw) -> tuple[str | None, dict]:
    """``"asha"`` or ``{type: asha, ...}`` -> ("asha", {...}); None -> (None, {})."""
    if raw is None:
        return None, {}
    if isinstance(raw, str):
        return raw, {}
    options = dict(raw)
    return options.pop("type", None), options


def did_you_mean(value: str, choices) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def fail(where: str, message: str) -> None:
    raise ConfigError(f"{where}: {message}")


def require_extra(where: str, kind: str) -> None:
    """Raises ConfigError when the package of the search algorithm ``kind`` is missing."""
    import importlib.util

    package = EXTRA_SEARCH_ALGS[kind]
    if importlib.util.find_spec(package) is None:
        fail(where, f"tune.search_alg {kind} needs the optional package {package!r}, which is "
                     "not installed: pip install -e '.[tune]' (or pip install "
                     f"{package}), or use search_alg random.")
