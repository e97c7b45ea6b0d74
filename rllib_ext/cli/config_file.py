"""Experiment YAML files -> RLlib ``AlgorithmConfig`` objects, with errors a user can act on.

A config file (``configs/<algo>/<env>.yaml``)::

    algorithm: PG                       # an rllib_ext or RLlib algorithm name
    env: CartPole-v1                    # a registered name (gymnasium id, rllib_ext or Tune
                                        # env), or the user's env: 'module:Class',
                                        # 'module:factory' (called with env_config) or
                                        # 'module:Id-v0' (see rllib_ext.user_envs); the
                                        # file's folder and the working directory are
                                        # importable
    env_config: {}                      # kwargs for the env (optional)
    config:                             # AlgorithmConfig sections: method -> keyword arguments
      training: {lr: 0.005, baseline: mean}
      env_runners: {num_env_runners: 0}
      rl_module: {model_config: {fcnet_hiddens: [64, 64]}}
    stop: {num_env_steps_sampled_lifetime: 100000}
    checkpoint_every: 0                 # iterations between checkpoints (0: only at the end;
                                        # with evaluation: every evaluation_interval, keeping
                                        # the best by the evaluation metric and the last)
    pass:                               # the learning test run by `rllib-ext check`
      metric: env_runners/episode_return_mean
      threshold: 150
      within_env_steps: 100000
      seeds: [0, 1, 2]
      min_passing: 3                    # seeds that must reach the threshold (default: all)
      min_mean: 140                     # optional: mean over seeds of the final value
    tune:                               # optional search space for `rllib-ext tune`
      num_samples: 1
      metric: env_runners/episode_return_mean   # what the scheduler / search algorithm and
      mode: max                                 # the summary rank trials by
      param_space: {lr: {loguniform: [0.0001, 0.01]}}
      scheduler: {type: asha, time_attr: training_iteration, max_t: 100, grace_period: 5,
                  reduction_factor: 3}    # or fifo, median_stopping, pbt (see SCHEDULERS)
      search_alg: {type: random, seed: 0}  # or grid; optuna, hyperopt: pip install -e '.[tune]'
      max_concurrent_trials: 4
      checkpoint_score_attribute: evaluation/env_runners/episode_return_mean
      checkpoint_score_order: max
      num_to_keep: 2

Resources per trial are the algorithm's own (RLlib algorithms reserve a placement group from
the config's ``env_runners``, ``learners`` and ``resources`` settings), so ``tune:`` has no
key for them.

Every mistake raises :class:`ConfigError` naming the key, the value and the valid choices.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


@dataclass
class Experiment:
    """One parsed, checked experiment file."""

    path: Path
    name: str
    algorithm: str
    env: str
    env_config: dict
    sections: dict[str, dict]
    stop: dict[str, Any]
    checkpoint_every: int = 0
    #: ``{"checkpoint": "best" | "last", "episodes": N}``: after training, the chosen
    #: checkpoint is evaluated greedily over N fresh episodes (None: no final evaluation).
    final_evaluation: dict | None = None
    criterion: PassCriterion | None = None
    tune: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def algorithm_class(self):
        from rllib_ext.registry import get_algorithm_class

        return get_algorithm_class(self.algorithm)

    def build_config(self, *, seed: int | None = None, overrides: dict | None = None):
        """A fresh, validated AlgorithmConfig. ``overrides``: section -> kwargs applied last."""
        config = self.algorithm_class().get_default_config()
        try:  # RLlib's setters check some values themselves (ValueError too)
            config.environment(self._registered_env().rllib_env,
                               env_config=dict(self.env_config))
            for section, kwargs in _merge_sections(self.sections, overrides or {}).items():
                if section == "callbacks":  # "module:Class" strings name callback classes
                    kwargs = {k: _load_object(k, v) for k, v in kwargs.items()}
                getattr(config, section)(**kwargs)
            if seed is not None:
                config.debugging(seed=seed)
            _cap_torch_threads(config)
            if self.evaluation_interval:
                _append_callback(config, "on_train_result", functools.partial(
                    record_evaluation_score, metric=self.evaluation_metric))
            config.validate()
        except ConfigError:
            raise
        except ValueError as e:
            # RLlib appends a hint on turning validation off; the message says the fix.
            message = str(e).split(RLLIB_SUPPRESS_HINT)[0]
            raise ConfigError(f"{self.path}: the algorithm config is invalid: {message}") from None
        except Exception as e:
            # validate() creates the env to check its spaces.
            reason = _env_creation_error(e)
            if reason is None:
                raise
            raise ConfigError(f"{self.path}: env {self.env!r} cannot be created here: "
                              f"{reason}") from None
        return config

    def _registered_env(self):
        """The resolved ``env`` (see :mod:`rllib_ext.user_envs`), an entry point registered
        with Tune (in this process; written to the cluster when Ray starts or at once)."""
        from rllib_ext.user_envs import EnvNotFoundError, register_user_env, resolve_env

        try:
            env = resolve_env(self.env)
        except EnvNotFoundError as e:
            raise ConfigError(f"{self.path}: {e}") from None
        register_user_env(env)
        return env

    def shipped_modules(self) -> list[str]:
        """Local files and package folders of the user's code this experiment imports (the
        env's module, callback classes given as ``"module:Class"``) that Ray workers must
        import too: ``rllib-ext`` ships them in the job's ``runtime_env`` (``py_modules``).
        Installed packages and rllib_ext are not listed (see
        :func:`rllib_ext.user_envs.module_source`)."""
        from rllib_ext.user_envs import module_source

        modules = [self._registered_env().module]
        for value in (self.sections.get("callbacks") or {}).values():
            if isinstance(value, str) and ":" in value:
                modules.append(value.partition(":")[0])
        sources = [module_source(m) for m in modules if m]
        return list(dict.fromkeys(s for s in sources if s))

    @property
    def evaluation_interval(self) -> int:
        """Iterations between RLlib evaluations (0: the config does not evaluate)."""
        interval = (self.sections.get("evaluation") or {}).get("evaluation_interval")
        return interval if isinstance(interval, int) and interval > 0 else 0

    @property
    def evaluation_metric(self) -> str:
        """The metric a checkpoint is scored by: the pass criterion's when it is an evaluation
        metric, else RLlib's evaluation return (higher is better)."""
        if self.criterion and self.criterion.metric.startswith("evaluation/"):
            return self.criterion.metric
        return EVALUATION_METRIC

    def param_space(self, config) -> dict:
        """Tune's ``param_space``: ``config`` as plain data (the values that differ from the
        algorithm's defaults; see :func:`rllib_ext.core.plain_config.plain_config_dict`),
        so that ``Tuner.restore`` needs no ``param_space`` to create trials that had not
        started, with the file's ``tune.param_space`` turned into Tune objects (left out for
        ``search_alg`` optuna or hyperopt: :meth:`search_alg` holds them, and the searcher's
        suggestions are merged into this dict).

        Its trials also run :func:`record_tune_metrics` after each iteration (on a copy of
        ``config``): ``tune.metric`` is in every result, as Tune's schedulers and search
        algorithms demand, and a nested ``tune.checkpoint_score_attribute`` is copied to
        :data:`CHECKPOINT_SCORE_KEY`."""
        from rllib_ext.core.plain_config import plain_config_dict

        config = config.copy(copy_frozen=False)
        _append_callback(config, "on_train_result", functools.partial(
            record_tune_metrics, metric=self.tune_metric,
            score_metric=self.tune.get("checkpoint_score_attribute")))
        space = plain_config_dict(config)
        if _typed(self.tune.get("search_alg"))[0] not in EXTRA_SEARCH_ALGS:
            space.update(self._search_domains())
        return space

    def _search_domains(self) -> dict:
        """``tune.param_space`` as Tune search spaces."""
        return {key: _search_space(key, spec)
                for key, spec in (self.tune.get("param_space") or {}).items()}

    @property
    def tune_metric(self) -> str:
        """The metric trials are ranked by (``tune.metric``)."""
        return self.tune.get("metric", DEFAULT_METRIC)

    @property
    def tune_mode(self) -> str:
        """``"max"`` or ``"min"`` (``tune.mode``)."""
        return self.tune.get("mode", "max")

    def searched_keys(self) -> list[str]:
        """The config keys a sweep varies: ``tune.param_space``'s and, for PBT, those of
        ``hyperparam_mutations``."""
        keys = list(self.tune.get("param_space") or {})
        _, options = _typed(self.tune.get("scheduler"))
        keys += [k for k in options.get("hyperparam_mutations") or {} if k not in keys]
        return keys

    def tune_config(self, num_samples: int):
        """Tune's ``TuneConfig`` of ``rllib-ext tune``: samples, scheduler, search algorithm
        and ``max_concurrent_trials`` (the scheduler and search algorithm get ``tune.metric``
        and ``tune.mode`` themselves; Tune keeps them in the run for ``Tuner.restore``)."""
        from ray import tune

        searcher = _typed(self.tune.get("search_alg"))[0] in EXTRA_SEARCH_ALGS
        return tune.TuneConfig(num_samples=num_samples, scheduler=self.scheduler(),
                               search_alg=self.search_alg(),
                               max_concurrent_trials=self.tune.get("max_concurrent_trials"),
                               trial_dirname_creator=searcher_trial_dirname if searcher
                               else None)

    def scheduler(self):
        """``tune.scheduler`` as a Tune trial scheduler; None without one (Tune: FIFO)."""
        from ray.tune import schedulers

        kind, options = _typed(self.tune.get("scheduler"))
        if kind is None:
            return None
        if kind == "fifo":
            return schedulers.FIFOScheduler()
        common = {"time_attr": options.get("time_attr", "training_iteration"),
                  "metric": self.tune_metric, "mode": self.tune_mode}
        if kind == "asha":
            return schedulers.ASHAScheduler(
                **common, max_t=options.get("max_t", self.stop.get(common["time_attr"])),
                grace_period=options.get("grace_period", 1),
                reduction_factor=options.get("reduction_factor", 4),
                brackets=options.get("brackets", 1))
        if kind == "median_stopping":
            return schedulers.MedianStoppingRule(
                **common, grace_period=options.get("grace_period", 1),
                min_samples_required=options.get("min_samples_required", 3),
                min_time_slice=options.get("min_time_slice", 0),
                hard_stop=options.get("hard_stop", True))
        mutations = {key: _mutation(f"tune.scheduler.hyperparam_mutations.{key}", spec)
                     for key, spec in options["hyperparam_mutations"].items()}
        return schedulers.PopulationBasedTraining(
            **common, perturbation_interval=options["perturbation_interval"],
            burn_in_period=options.get("burn_in_period", 0), hyperparam_mutations=mutations,
            quantile_fraction=options.get("quantile_fraction", 0.25),
            resample_probability=options.get("resample_probability", 0.25),
            perturbation_factors=tuple(options.get("perturbation_factors", (1.2, 0.8))),
            synch=options.get("synch", False))

    def search_alg(self):
        """``tune.search_alg`` as a Tune search algorithm; None without one (Tune: random and
        grid search, as ``random``)."""
        kind, options = _typed(self.tune.get("search_alg"))
        if kind is None:
            return None
        if kind in ("random", "grid"):
            from ray.tune.search import BasicVariantGenerator

            return BasicVariantGenerator(random_state=options.get("seed"))
        _require_extra(str(self.path), kind)
        if kind == "optuna":
            from ray.tune.search.optuna import OptunaSearch

            return OptunaSearch(space=self._search_domains(), metric=self.tune_metric,
                                mode=self.tune_mode, seed=options.get("seed"))
        from ray.tune.search.hyperopt import HyperOptSearch

        # The space is the searcher's own: given the whole config, HyperOpt would hand every
        # list in it back as a tuple.
        return HyperOptSearch(space=self._search_domains(), metric=self.tune_metric,
                              mode=self.tune_mode,
                              random_state_seed=options.get("seed"),
                              n_initial_points=options.get("n_initial_points", 20))

    def checkpoint_scoring(self) -> tuple[str | None, str, int | None] | None:
        """(result key Tune scores checkpoints by, ``"max"``/``"min"``, checkpoints to keep)
        from the ``tune:`` checkpoint keys; None when the file sets none of them. The key is
        :data:`CHECKPOINT_SCORE_KEY` for a nested attribute, :data:`EVALUATION_SCORE_KEY`
        when only ``num_to_keep`` is set and the config evaluates, None (keep the latest)
        when it does not. Under PBT every checkpoint is kept: it restores trials from other
        trials' checkpoints, which Tune would otherwise delete."""
        pbt = _typed(self.tune.get("scheduler"))[0] == "pbt"
        if not pbt and not any(k in self.tune for k in (
                "checkpoint_score_attribute", "checkpoint_score_order", "num_to_keep")):
            return None
        attribute = self.tune.get("checkpoint_score_attribute")
        order = self.tune.get("checkpoint_score_order") or (
            self.tune_mode if attribute == self.tune_metric else "max")
        if attribute is None:
            key = EVALUATION_SCORE_KEY if self.evaluation_interval else None
        else:
            key = CHECKPOINT_SCORE_KEY if "/" in attribute else attribute
        return key, order, None if pbt else self.tune.get("num_to_keep")


def searcher_trial_dirname(trial) -> str:
    """Trial directory names of sweeps with ``search_alg`` optuna or hyperopt, like those of
    random search: ``<trainable>_<env>_<trial id>_<n>_<searched values>_<date>`` (Tune's own
    names list every value of the config there)."""
    from ray.tune.search.variant_generator import format_vars
    from ray.tune.utils import date_str

    values = format_vars({(key,): value for key, value in trial.evaluated_params.items()})
    counter = str(trial.experiment_tag or "").split("_", 1)[0]
    return f"{trial}_{counter}_{values}"[:130] + f"_{date_str()}"


def _cap_torch_threads(config) -> None:
    """RLlib's built-in algorithms get rllib_ext's torch-thread cap through ``on_algorithm_init``
    (ours apply it in ``setup()``); a callback set in the file is kept and runs first."""
    from rllib_ext.core.threads import limit_torch_threads_on_init

    if type(config).__module__.startswith("rllib_ext."):
        return
    _append_callback(config, "on_algorithm_init", limit_torch_threads_on_init)


def _append_callback(config, event: str, callback) -> None:
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


def _lookup(result: dict, metric: str):
    """``result["a"]["b"]`` for ``metric="a/b"``; None if absent."""
    node = result
    for part in metric.split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def iteration_value(result: dict, metric: str) -> float:
    """``metric``'s number in ``result`` (NaN if absent); an evaluation metric only in an
    iteration that evaluated (see :func:`record_evaluation_score`)."""
    if metric.startswith("evaluation/"):
        evaluation = result.get("evaluation")
        if not (isinstance(evaluation, dict) and "num_healthy_workers" in evaluation):
            return math.nan
    value = _lookup(result, metric)
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
    if _lookup(result, metric) is None:
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


def _env_creation_error(error: BaseException) -> str | None:
    """The reason, in one line, when ``error`` comes from creating the env (a missing
    dependency such as MuJoCo, an unknown id); None for any other error."""
    import gymnasium
    from ray.rllib.utils.error import EnvError

    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    for e in chain:  # the most specific first: gymnasium's own (e.g. DependencyNotInstalled)
        if isinstance(e, gymnasium.error.Error):
            return str(e).strip().splitlines()[0]
    for e in chain:
        if isinstance(e, EnvError):
            return " ".join(str(e).strip().splitlines()[:4])
    return None


def _load_object(key: str, value):
    if not (isinstance(value, str) and ":" in value):
        return value
    from rllib_ext.registry import load

    try:
        return load(value)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"config.callbacks.{key}: cannot import {value!r} ({e}).") from None


def _merge_sections(base: dict, extra: dict) -> dict:
    merged = {k: dict(v) for k, v in base.items()}
    for section, kwargs in extra.items():
        merged.setdefault(section, {}).update(kwargs)
    return merged


def _did_you_mean(value: str, choices) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _fail(where: str, message: str) -> None:
    raise ConfigError(f"{where}: {message}")


def resolve_path(name: str | Path) -> Path:
    """A config path as given, or a short name like ``pg/cartpole`` under ``configs/``."""
    path = Path(name)
    if path.is_file():
        return path
    for root in (Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs"):
        for candidate in (root / name, root / f"{name}.yaml"):
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"config file {str(name)!r} not found (looked for the path and under configs/). "
        "Run `rllib-ext list` to see the available configs."
    )


def default_folder(name: str) -> Path:
    """The folder ``name`` (``configs``, ``tune_runs``) of the working directory if it has
    one, else the repository's."""
    here = Path.cwd() / name
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / name


def list_sweep_files() -> list[Path]:
    """The sweep definitions: ``tune_runs/*.yaml`` (not the run folders' copies below it)."""
    return sorted(default_folder("tune_runs").glob("*.yaml"))


def list_config_files(root: str | Path | None = None) -> list[Path]:
    """Every ``*.yaml`` under ``root`` (default: the repository's ``configs/``), sorted."""
    root = Path(default_folder("configs") if root is None else root)
    if root.is_file():
        return [root]
    return sorted(root.rglob("*.yaml"))


def load_experiment(name: str | Path) -> Experiment:
    """Parses and checks an experiment file; raises ConfigError on any mistake. The file's
    folder and the working directory become importable (appended to ``sys.path``), so that
    an ``env:`` or a callback may name a module beside the file."""
    from rllib_ext.user_envs import add_import_paths

    path = resolve_path(name)
    add_import_paths(path.parent, Path.cwd())
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        _fail(str(path), "the file must be a mapping with at least 'algorithm' and 'env'.")
    where = str(path)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            _fail(
                where,
                f"unknown top-level key {key!r}.{_did_you_mean(key, TOP_LEVEL_KEYS)} "
                f"Valid keys: {', '.join(TOP_LEVEL_KEYS)}.",
            )
    for key in ("algorithm", "env"):
        if not isinstance(raw.get(key), str):
            _fail(where, f"{key!r} is required and must be a string, got {raw.get(key)!r}.")

    algorithm = raw["algorithm"]
    algo_cls = _check_algorithm(where, algorithm)
    env_config = raw.get("env_config") or {}
    if not isinstance(env_config, dict):
        _fail(where, f"'env_config' must be a mapping, got {env_config!r}.")
    _check_env(where, raw["env"])

    sections = raw.get("config") or {}
    if not isinstance(sections, dict):
        _fail(where, f"'config' must be a mapping of AlgorithmConfig sections, got {sections!r}.")
    default_config = algo_cls.get_default_config()
    for section, kwargs in sections.items():
        _check_section(where, default_config, section, kwargs)

    stop = raw.get("stop") or {}
    if not isinstance(stop, dict) or not stop:
        _fail(where, f"'stop' must be a non-empty mapping like {{{ENV_STEPS_KEY}: 100000}}.")
    for key, value in stop.items():
        if key not in STOP_KEYS and str(key).split("/")[0] not in STOP_SECTIONS:
            close = difflib.get_close_matches(str(key), STOP_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            _fail(where, f"unknown stop key {key!r}: Tune would never reach it.{hint} Use one "
                         f"of {list(STOP_KEYS)} or a result metric such as "
                         f"'{DEFAULT_METRIC}'.")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(where, f"stop.{key} must be a number, got {value!r}.")

    checkpoint_every = raw.get("checkpoint_every", 0)
    if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        _fail(where, f"'checkpoint_every' must be an integer >= 0, got {checkpoint_every!r}.")
    interval = (sections.get("evaluation") or {}).get("evaluation_interval")
    if isinstance(interval, int) and interval > 0 and checkpoint_every % interval:
        _fail(where, f"'checkpoint_every' ({checkpoint_every}) must be a multiple of "
                     f"evaluation.evaluation_interval ({interval}) so that every checkpoint "
                     "is scored by an evaluation; e.g. checkpoint_every: "
                     f"{interval * max(1, round(checkpoint_every / interval))}.")

    final_evaluation = _parse_final_evaluation(where, raw.get("final_evaluation"), interval)
    criterion = _parse_criterion(where, raw.get("pass"))
    if criterion is not None and criterion.metric == FINAL_EVALUATION_METRIC and (
            final_evaluation is None):
        _fail(where, f"pass.metric {FINAL_EVALUATION_METRIC!r} needs a 'final_evaluation' "
                     "section, e.g. final_evaluation: {checkpoint: best, episodes: 1000}.")
    return Experiment(
        path=path,
        name=_experiment_name(path),
        algorithm=algorithm,
        env=raw["env"],
        env_config=env_config,
        sections=sections,
        stop=stop,
        checkpoint_every=checkpoint_every,
        final_evaluation=final_evaluation,
        criterion=criterion,
        tune=_parse_tune(where, raw.get("tune"), default_config, stop=stop,
                         checkpoints_during_run=bool(checkpoint_every or (
                             isinstance(interval, int) and interval > 0))),
        description=str(raw.get("description", "")),
    )


def _experiment_name(path: Path) -> str:
    parts = path.resolve().with_suffix("").parts
    if "configs" in parts:
        parts = parts[len(parts) - parts[::-1].index("configs") :]
    else:
        parts = parts[-1:]
    return "_".join(parts)


def _check_algorithm(where: str, name: str):
    from rllib_ext.registry import algorithm_names, get_algorithm_class

    try:
        return get_algorithm_class(name)
    except KeyError:
        names = algorithm_names()
        _fail(
            where,
            f"unknown algorithm {name!r}.{_did_you_mean(name, names)} "
            f"Valid choices: {', '.join(names)}.",
        )


def _check_env(where: str, env_id: str) -> None:
    """Resolves ``env_id`` (see :mod:`rllib_ext.user_envs`): a registered name, a gymnasium
    id (also ``module:Id-v0``) or an entry point; a module that does not import fails with
    its import error."""
    from rllib_ext.user_envs import EnvNotFoundError, resolve_env

    try:
        resolve_env(env_id)
    except EnvNotFoundError as e:
        message = str(e)
        if e.import_error:
            message += (f" Modules are looked up in the experiment file's folder "
                        f"({Path(where).resolve().parent}), the working directory "
                        f"({Path.cwd()}) and on sys.path: put the module (a .py file or a "
                        "package folder) there, or install it.")
        _fail(where, message)


def _section_parameters(config, section: str) -> dict[str, inspect.Parameter]:
    """Keyword parameters accepted by ``config.<section>()``, through ``**kwargs`` chains."""
    params: dict[str, inspect.Parameter] = {}
    for klass in type(config).__mro__:
        method = klass.__dict__.get(section)
        if method is None:
            continue
        for name, p in inspect.signature(method).parameters.items():
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
                if name != "self":
                    params.setdefault(name, p)
    return params


def _check_section(where: str, config, section: str, kwargs) -> None:
    valid_sections = [
        name
        for name in (
            "environment",
            "training",
            "env_runners",
            "learners",
            "evaluation",
            "rl_module",
            "reporting",
            "checkpointing",
            "debugging",
            "fault_tolerance",
            "resources",
            "callbacks",
            "framework",
        )
        if callable(getattr(config, name, None))
    ]
    if section not in valid_sections:
        _fail(
            where,
            f"unknown config section {section!r}.{_did_you_mean(section, valid_sections)} "
            f"Valid sections: {', '.join(valid_sections)}.",
        )
    if not isinstance(kwargs, dict):
        _fail(where, f"config.{section} must be a mapping of keyword arguments, got {kwargs!r}.")
    params = _section_parameters(config, section)
    for key, value in kwargs.items():
        if key not in params:
            _fail(
                where,
                f"unknown key {key!r} in config.{section}.{_did_you_mean(key, params)} "
                f"Valid keys: {', '.join(sorted(params))}.",
            )
        _check_type(f"{where}: config.{section}.{key}", getattr(config, key, None), value)


def _check_type(where: str, default, value) -> None:
    """Rejects a value whose type cannot stand in for the default's (None defaults: anything)."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        expected = "a string"
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
        expected = "a list"
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
        expected = "a mapping"
    else:
        return
    if not ok:
        raise ConfigError(
            f"{where} must be {expected} (default: {default!r}), got {value!r} "
            f"({type(value).__name__})."
        )


def _check_mapping(where: str, name: str, raw, allowed) -> None:
    """``raw`` must be a mapping whose keys are all in ``allowed``."""
    if not isinstance(raw, dict):
        _fail(where, f"'{name}' must be a mapping with keys {allowed}, got {raw!r}.")
    for key in raw:
        if key not in allowed:
            _fail(
                where,
                f"unknown key {key!r} in '{name}'.{_did_you_mean(key, allowed)} "
                f"Valid keys: {', '.join(allowed)}.",
            )


def _parse_final_evaluation(where: str, raw, interval) -> dict | None:
    if raw is None:
        return None
    _check_mapping(where, "final_evaluation", raw, FINAL_EVALUATION_KEYS)
    which = raw.get("checkpoint", "best")
    if which not in ("best", "last"):
        _fail(where, f"final_evaluation.checkpoint must be 'best' or 'last', got {which!r}.")
    episodes = raw.get("episodes", 1000)
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        _fail(where, f"final_evaluation.episodes must be an integer >= 1, got {episodes!r}.")
    if which == "best" and not (isinstance(interval, int) and interval > 0):
        _fail(where, "final_evaluation.checkpoint 'best' needs checkpoints scored during the "
                     "run: set evaluation.evaluation_interval (e.g. 2), or use checkpoint: "
                     "last.")
    return {"checkpoint": which, "episodes": episodes}


def _parse_criterion(where: str, raw) -> PassCriterion | None:
    if raw is None:
        return None
    _check_mapping(where, "pass", raw, PASS_KEYS)
    for key in ("threshold", "within_env_steps"):
        if not isinstance(raw.get(key), (int, float)) or isinstance(raw.get(key), bool):
            _fail(where, f"pass.{key} is required and must be a number, got {raw.get(key)!r}.")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        _fail(where, f"pass.seeds must be a non-empty list of integers, got {seeds!r}.")
    criterion = PassCriterion(
        metric=str(raw.get("metric", DEFAULT_METRIC)),
        threshold=float(raw["threshold"]),
        within_env_steps=int(raw["within_env_steps"]),
        seeds=seeds,
        min_passing=raw.get("min_passing"),
        min_mean=raw.get("min_mean"),
    )
    if criterion.min_mean is not None and (not isinstance(criterion.min_mean, (int, float))
                                           or isinstance(criterion.min_mean, bool)):
        _fail(where, f"pass.min_mean must be a number, got {criterion.min_mean!r}.")
    if not 1 <= criterion.required <= len(seeds):
        _fail(where, f"pass.min_passing must be in 1..{len(seeds)}, got {criterion.min_passing}.")
    return criterion


def _parse_tune(where: str, raw, default_config, *, stop: dict,
                checkpoints_during_run: bool) -> dict:
    """Checks the ``tune:`` section (see :data:`TUNE_KEYS`); returns it as written."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        for key in ("resources_per_trial", "resources"):
            if key in raw:
                _fail(where, f"tune.{key}: an RLlib algorithm reserves its own resources per "
                             "trial (a placement group for its main process, env runners and "
                             "learners), so Tune takes none from the file. Set them in the "
                             "config instead, e.g. config.env_runners {num_env_runners: 2, "
                             "num_cpus_per_env_runner: 1}, config.learners {num_learners: 1, "
                             "num_gpus_per_learner: 1} or config.resources "
                             "{num_cpus_for_main_process: 2}; `rllib-ext tune` prints what "
                             "each trial reserves.")
    _check_mapping(where, "tune", raw, TUNE_KEYS)
    if raw.get("mode", "max") not in ("max", "min"):
        _fail(where, f"tune.mode must be 'max' or 'min', got {raw.get('mode')!r}.")
    for key in ("metric", "checkpoint_score_attribute"):
        if key in raw:
            _check_metric(where, f"tune.{key}", raw[key])
    num_samples = raw.get("num_samples", 1)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        _fail(where, f"tune.num_samples must be an integer >= 1, got {num_samples!r}.")
    space = raw.get("param_space") or {}
    if not isinstance(space, dict):
        _fail(where, f"tune.param_space must be a mapping, got {space!r}.")
    known = default_config.to_dict()
    for key, spec in space.items():
        _check_config_key(where, "tune.param_space", key, known)
        _search_space(f"{where}: tune.param_space.{key}", spec)
    _check_scheduler(where, raw.get("scheduler"), known, stop)
    _check_search_alg(where, raw, space)
    concurrent = raw.get("max_concurrent_trials")
    if concurrent is not None and (not isinstance(concurrent, int)
                                   or isinstance(concurrent, bool) or concurrent < 1):
        _fail(where, f"tune.max_concurrent_trials must be an integer >= 1 (or left out: as "
                     f"many as the cluster's resources allow), got {concurrent!r}.")
    _check_checkpoint_scoring(where, raw, checkpoints_during_run)
    return raw


def _check_config_key(where: str, name: str, key, known) -> None:
    # A public property (train_batch_size_per_learner) is stored as its private attribute
    # (_train_batch_size_per_learner) in to_dict(); update_from_dict() takes either.
    if key not in known and f"_{key}" not in known:
        _fail(
            where,
            f"unknown key {key!r} in {name}.{_did_you_mean(key, known)} "
            "Keys are AlgorithmConfig attribute names such as lr, gamma, "
            "train_batch_size_per_learner.",
        )


def _check_metric(where: str, name: str, metric) -> None:
    """A result metric: a nested ``section/.../name`` or a top-level key Tune results have."""
    top_level = (*STOP_KEYS, EVALUATION_SCORE_KEY)
    if not isinstance(metric, str) or not metric:
        _fail(where, f"{name} must be a result metric such as '{DEFAULT_METRIC}', got "
                     f"{metric!r}.")
    if "/" not in metric and metric not in top_level:
        hint = _did_you_mean(metric, top_level)
        _fail(where, f"{name}: {metric!r} is not a top-level result key.{hint} Use a nested metric "
                     f"such as '{DEFAULT_METRIC}' or "
                     f"'{EVALUATION_METRIC}', or one of {list(top_level)}.")


def _typed(raw) -> tuple[str | None, dict]:
    """``"asha"`` or ``{type: asha, ...}`` -> ("asha", {...}); None -> (None, {})."""
    if raw is None:
        return None, {}
    if isinstance(raw, str):
        return raw, {}
    options = dict(raw)
    return options.pop("type", None), options


def _check_typed(where: str, name: str, raw, kinds: dict) -> tuple[str | None, dict]:
    """Checks ``name`` (``"kind"`` or ``{type: kind, <kind's keys>}``); returns its parts."""
    if raw is None:
        return None, {}
    if not isinstance(raw, (str, dict)):
        _fail(where, f"{name} must be a type name or a mapping {{type: ..., ...}} with type one "
                     f"of {', '.join(kinds)}, got {raw!r}.")
    kind, options = _typed(raw)
    if kind not in kinds:
        shown = "missing" if kind is None else repr(kind)
        _fail(where, f"{name}: type {shown} is not one of {', '.join(kinds)}."
                     f"{_did_you_mean(kind, kinds) if kind else ''}")
    for key in options:
        if key not in kinds[kind]:
            valid = ", ".join(("type", *kinds[kind]))
            prefixed = [k for k in kinds[kind] if k.startswith(str(key))]
            hint = (f" Did you mean {prefixed[0]!r}?" if prefixed
                    else _did_you_mean(key, kinds[kind]))
            _fail(where, f"unknown key {key!r} in {name} ({kind}).{hint} Valid keys: {valid}.")
    return kind, options


def _check_number(where: str, name: str, value, *, integer: bool = False,
                  low: float | None = None, above: float | None = None,
                  high: float | None = None) -> None:
    """``value`` must be a (finite) number, an integer if ``integer``, ``>= low``, ``> above``
    and ``<= high``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not integer or isinstance(value, int))
    ok = ok and (low is None or value >= low) and (above is None or value > above)
    ok = ok and (high is None or value <= high)
    if not ok:
        bounds = [f">= {low}" if low is not None else "", f"> {above}" if above is not None
                  else "", f"<= {high}" if high is not None else ""]
        kind = "an integer" if integer else "a number"
        _fail(where, f"{name} must be {kind} {' and '.join(b for b in bounds if b)}, got "
                     f"{value!r}.".replace("  ", " "))


def _check_scheduler(where: str, raw, known: dict, stop: dict) -> None:
    kind, options = _check_typed(where, "tune.scheduler", raw, SCHEDULERS)
    if kind in (None, "fifo"):
        return
    name = f"tune.scheduler ({kind})"
    time_attr = options.get("time_attr", "training_iteration")
    if time_attr not in TIME_ATTRS:
        _fail(where, f"{name}.time_attr must be one of {', '.join(TIME_ATTRS)}, got "
                     f"{time_attr!r}.{_did_you_mean(time_attr, TIME_ATTRS)}")
    if kind == "asha":
        if "max_t" not in options and time_attr not in stop:
            _fail(where, f"{name}.max_t is required: the {time_attr} at which ASHA stops the "
                         f"trials it kept (or add stop.{time_attr}, which it then uses).")
        max_t = options.get("max_t", stop.get(time_attr))
        _check_number(where, f"{name}.max_t", max_t, above=0)
        grace = options.get("grace_period", 1)
        _check_number(where, f"{name}.grace_period", grace, above=0, high=max_t)
        _check_number(where, f"{name}.reduction_factor", options.get("reduction_factor", 4),
                      above=1)
        _check_number(where, f"{name}.brackets", options.get("brackets", 1), integer=True,
                      low=1)
    elif kind == "median_stopping":
        _check_number(where, f"{name}.grace_period", options.get("grace_period", 1), low=0)
        _check_number(where, f"{name}.min_samples_required",
                      options.get("min_samples_required", 3), integer=True, low=1)
        _check_number(where, f"{name}.min_time_slice", options.get("min_time_slice", 0), low=0)
        if not isinstance(options.get("hard_stop", True), bool):
            _fail(where, f"{name}.hard_stop must be true or false, got "
                         f"{options['hard_stop']!r}.")
    else:  # pbt
        if "perturbation_interval" not in options:
            _fail(where, f"{name}.perturbation_interval is required: the {time_attr} between "
                         "two exploit/explore steps of a trial, e.g. 5.")
        _check_number(where, f"{name}.perturbation_interval", options["perturbation_interval"],
                      above=0)
        _check_number(where, f"{name}.burn_in_period", options.get("burn_in_period", 0), low=0)
        _check_number(where, f"{name}.quantile_fraction", options.get("quantile_fraction", 0.25),
                      low=0, high=0.5)
        _check_number(where, f"{name}.resample_probability",
                      options.get("resample_probability", 0.25), low=0, high=1)
        factors = options.get("perturbation_factors", [1.2, 0.8])
        if not (isinstance(factors, list) and len(factors) == 2 and all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0
                for f in factors)):
            _fail(where, f"{name}.perturbation_factors must be two positive numbers like "
                         f"[1.2, 0.8], got {factors!r}.")
        if not isinstance(options.get("synch", False), bool):
            _fail(where, f"{name}.synch must be true or false, got {options['synch']!r}.")
        mutations = options.get("hyperparam_mutations")
        if not isinstance(mutations, dict) or not mutations:
            _fail(where, f"{name}.hyperparam_mutations is required: a mapping of config keys "
                         "to search spaces, e.g. {lr: {loguniform: [0.0001, 0.01]}}, got "
                         f"{mutations!r}.")
        for key, spec in mutations.items():
            _check_config_key(where, f"{name}.hyperparam_mutations", key, known)
            _mutation(f"{where}: tune.scheduler.hyperparam_mutations.{key}", spec)


def _mutation(where: str, spec):
    """A PBT mutation from the search-space syntax: ``choice`` -> the list (PBT moves to a
    neighbouring value or resamples), ``uniform`` & co. -> the Tune domain (PBT scales the
    value by a perturbation factor or resamples); ``grid_search`` has no meaning here."""
    if isinstance(spec, dict) and len(spec) == 1 and "grid_search" in spec:
        raise ConfigError(f"{where}: PBT cannot grid-search while it mutates; use "
                          f"{{choice: {spec['grid_search']!r}}}.")
    domain = _search_space(where, spec)
    return list(spec["choice"]) if "choice" in spec else domain


def _check_search_alg(where: str, raw: dict, space: dict) -> None:
    kind, options = _check_typed(where, "tune.search_alg", raw.get("search_alg"), SEARCH_ALGS)
    if kind is None:
        return
    if "seed" in options:
        _check_number(where, f"tune.search_alg ({kind}).seed", options["seed"], integer=True,
                      low=0)
    if "n_initial_points" in options:
        _check_number(where, f"tune.search_alg ({kind}).n_initial_points",
                      options["n_initial_points"], integer=True, low=1)
    grids = [k for k, spec in space.items() if isinstance(spec, dict) and "grid_search" in spec]
    if kind == "grid":
        others = [k for k in space if k not in grids]
        if not space or others:
            _fail(where, f"tune.search_alg grid runs every combination of grid_search values, "
                         f"but {', '.join(others) or 'tune.param_space'} "
                         f"{'is' if len(others) <= 1 else 'are'} not a grid_search; use "
                         "grid_search there, or search_alg random (which samples the other "
                         "kinds and crosses them with the grids).")
    scheduler, _ = _typed(raw.get("scheduler"))
    if scheduler == "pbt" and kind not in ("random", "grid"):
        _fail(where, f"tune.scheduler pbt picks the configs itself (from hyperparam_mutations); "
                     f"Tune allows no search algorithm beside it: drop tune.search_alg {kind} "
                     "or use random.")
    if kind in EXTRA_SEARCH_ALGS:
        if not space:
            _fail(where, f"tune.search_alg {kind} needs a tune.param_space to search.")
        if grids:
            _fail(where, f"tune.search_alg {kind} cannot grid-search (tune.param_space."
                         f"{grids[0]}); use choice instead, or search_alg grid / random.")
        _require_extra(where, kind)


def _require_extra(where: str, kind: str) -> None:
    """Raises ConfigError when the package of the search algorithm ``kind`` is missing."""
    import importlib.util

    package = EXTRA_SEARCH_ALGS[kind]
    if importlib.util.find_spec(package) is None:
        _fail(where, f"tune.search_alg {kind} needs the optional package {package!r}, which is "
                     "not installed: pip install -e '.[tune]' (or pip install "
                     f"{package}), or use search_alg random.")


def _check_checkpoint_scoring(where: str, raw: dict, checkpoints_during_run: bool) -> None:
    keys = [k for k in ("checkpoint_score_attribute", "checkpoint_score_order", "num_to_keep")
            if k in raw]
    if not keys:
        return
    order = raw.get("checkpoint_score_order")
    if order is not None and order not in ("max", "min"):
        _fail(where, f"tune.checkpoint_score_order must be 'max' or 'min', got {order!r}.")
    if "num_to_keep" in raw:
        _check_number(where, "tune.num_to_keep", raw["num_to_keep"], integer=True, low=1)
        if _typed(raw.get("scheduler"))[0] == "pbt":
            _fail(where, "tune.num_to_keep cannot be used with scheduler pbt: PBT restores "
                         "trials from other trials' checkpoints, which would be deleted; drop "
                         "num_to_keep (every checkpoint is kept).")
    if not checkpoints_during_run:
        _fail(where, f"tune.{keys[0]} chooses among the checkpoints of a trial, but this config "
                     "checkpoints only at the end: set checkpoint_every (iterations between "
                     "checkpoints) or evaluate (config.evaluation.evaluation_interval).")


def _search_space(where: str, spec):
    """``{grid_search: [...]}``, ``{choice: [...]}``, ``{uniform: [lo, hi]}``, ... -> Tune."""
    from ray import tune

    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SEARCH_SPACES:
        raise ConfigError(
            f"{where} must be a one-key mapping {{<kind>: <args>}} with kind one of "
            f"{', '.join(SEARCH_SPACES)}; got {spec!r}."
        )
    kind, args = next(iter(spec.items()))
    if not isinstance(args, list) or not args:
        raise ConfigError(f"{where}.{kind} needs a non-empty list, got {args!r}.")
    if kind == "grid_search":
        return tune.grid_search(args)
    if kind == "choice":
        return tune.choice(args)
    if len(args) != (3 if kind == "quniform" else 2):
        raise ConfigError(f"{where}.{kind} needs [low, high{', q' if kind == 'quniform' else ''}]"
                          f", got {args!r}.")
    return getattr(tune, kind)(*args)
