"""Experiment YAML files -> RLlib ``AlgorithmConfig`` objects, with errors a user can act on.

A config file (``configs/<algo>/<env>.yaml``)::

    algorithm: PG                       # an rllib_ext or RLlib algorithm name
    env: CartPole-v1                    # gymnasium id or an env registered with RLlib
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
      metric: env_runners/episode_return_mean
      mode: max
      param_space: {lr: {loguniform: [0.0001, 0.01]}}

Every mistake raises :class:`ConfigError` naming the key, the value and the valid choices.
"""

from __future__ import annotations

import difflib
import functools
import importlib
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
    "pass",
    "tune",
    "description",
)
PASS_KEYS = ("metric", "threshold", "within_env_steps", "seeds", "min_passing", "min_mean")
TUNE_KEYS = ("num_samples", "metric", "mode", "param_space")
SEARCH_SPACES = ("grid_search", "choice", "uniform", "loguniform", "randint", "quniform")
#: ``stop`` keys that count env steps (used for ETA and the pass criterion).
ENV_STEPS_KEY = "num_env_steps_sampled_lifetime"
#: Top-level result keys a ``stop`` may name (Tune's and RLlib's counters).
STOP_KEYS = (ENV_STEPS_KEY, "training_iteration", "time_total_s", "num_episodes_lifetime",
             "num_env_steps_trained_lifetime", "num_agent_steps_sampled_lifetime",
             "timesteps_total", "episodes_total")
#: Result sections a nested ``stop`` key ("section/.../metric") may start with.
STOP_SECTIONS = ("env_runners", "evaluation", "learners", "timers", "fault_tolerance")
DEFAULT_METRIC = "env_runners/episode_return_mean"
#: RLlib's (greedy, by default) evaluation return: what a run's best checkpoint is scored by.
EVALUATION_METRIC = "evaluation/env_runners/episode_return_mean"
#: Top-level result key the CLI adds to every result of a config that evaluates: the evaluation
#: metric in iterations that evaluated, NaN otherwise. Tune's checkpoint scoring needs a
#: top-level key (it looks the attribute up in the unflattened result), and RLlib repeats an
#: evaluation's results in the iteration after it, which must not score that iteration.
EVALUATION_SCORE_KEY = "evaluation_score"


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
            config.environment(_env_class(self.env) or self.env,
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
            message = str(e).split("\nTo suppress all validation errors")[0]
            raise ConfigError(f"{self.path}: the algorithm config is invalid: {message}") from None
        return config

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
        algorithm's defaults; see :func:`rllib_ext.algorithms.plain_config.plain_config_dict`),
        so that ``Tuner.restore`` needs no ``param_space`` to create trials that had not
        started, with the file's ``tune.param_space`` turned into Tune objects."""
        from rllib_ext.algorithms.plain_config import plain_config_dict

        space = plain_config_dict(config)
        for key, spec in (self.tune.get("param_space") or {}).items():
            space[key] = _search_space(key, spec)
        return space


def _cap_torch_threads(config) -> None:
    """RLlib's built-in algorithms get rllib_ext's torch-thread cap through ``on_algorithm_init``
    (ours apply it in ``setup()``); a callback set in the file is kept and runs first."""
    from rllib_ext.algorithms.threads import limit_torch_threads_on_init

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


def list_config_files(root: str | Path | None = None) -> list[Path]:
    """Every ``*.yaml`` under ``root`` (default: the repository's ``configs/``), sorted."""
    if root is None:
        root = Path.cwd() / "configs"
        if not root.is_dir():
            root = Path(__file__).resolve().parents[2] / "configs"
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(root.rglob("*.yaml"))


def load_experiment(name: str | Path) -> Experiment:
    """Parses and checks an experiment file; raises ConfigError on any mistake."""
    path = resolve_path(name)
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

    return Experiment(
        path=path,
        name=_experiment_name(path),
        algorithm=algorithm,
        env=raw["env"],
        env_config=env_config,
        sections=sections,
        stop=stop,
        checkpoint_every=checkpoint_every,
        criterion=_parse_criterion(where, raw.get("pass")),
        tune=_parse_tune(where, raw.get("tune"), default_config),
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


def _env_class(env_id: str):
    """The class a ``"package.module.Class"`` env names, else None (ids stay strings)."""
    import gymnasium as gym

    module, _, name = env_id.rpartition(".")
    if not module or env_id in gym.envs.registry:
        return None
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return obj if isinstance(obj, type) and issubclass(obj, gym.Env) else None


def _check_env(where: str, env_id: str) -> None:
    import gymnasium as gym
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if (
        _env_class(env_id) is not None
        or env_id in gym.envs.registry
        or _global_registry.contains(ENV_CREATOR, env_id)
    ):
        return
    try:  # gym.make's own resolution: namespaces, versions, plugins.
        gym.spec(env_id)
        return
    except Exception:
        pass
    from rllib_ext.registry import ENVIRONMENTS

    known = sorted(ENVIRONMENTS) + sorted(gym.envs.registry)
    hint = _did_you_mean(env_id, known)
    _fail(
        where,
        f"unknown env {env_id!r}.{hint} Use a gymnasium id (e.g. 'CartPole-v1'), an rllib_ext "
        f"env ({', '.join(sorted(ENVIRONMENTS)) or 'none registered'}) or a 'module.Class' path; "
        "`rllib-ext list` shows the rllib_ext environments.",
    )


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


def _parse_tune(where: str, raw, default_config) -> dict:
    if raw is None:
        return {}
    _check_mapping(where, "tune", raw, TUNE_KEYS)
    if raw.get("mode", "max") not in ("max", "min"):
        _fail(where, f"tune.mode must be 'max' or 'min', got {raw.get('mode')!r}.")
    space = raw.get("param_space") or {}
    if not isinstance(space, dict):
        _fail(where, f"tune.param_space must be a mapping, got {space!r}.")
    known = default_config.to_dict()
    for key, spec in space.items():
        if key not in known:
            _fail(
                where,
                f"unknown key {key!r} in tune.param_space.{_did_you_mean(key, known)} "
                "Keys are AlgorithmConfig attribute names such as lr, gamma, "
                "train_batch_size_per_learner.",
            )
        _search_space(f"{where}: tune.param_space.{key}", spec)
    return raw


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
