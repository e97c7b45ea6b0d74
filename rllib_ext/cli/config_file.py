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
import inspect
import math
from pathlib import Path

import yaml

from rllib_ext.cli.experiment import Experiment
from rllib_ext.cli.schema import (
    DEFAULT_METRIC,
    ENV_STEPS_KEY,
    EVALUATION_METRIC,
    EVALUATION_SCORE_KEY,
    EXTRA_SEARCH_ALGS,
    FINAL_EVALUATION_KEYS,
    FINAL_EVALUATION_METRIC,
    PASS_KEYS,
    SCHEDULERS,
    SEARCH_ALGS,
    STOP_KEYS,
    STOP_SECTIONS,
    TIME_ATTRS,
    TOP_LEVEL_KEYS,
    TUNE_KEYS,
    ConfigError,
    PassCriterion,
    did_you_mean,
    fail,
    require_extra,
    typed,
)
from rllib_ext.cli.tune_factory import mutation, search_space


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
        fail(str(path), "the file must be a mapping with at least 'algorithm' and 'env'.")
    where = str(path)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            fail(
                where,
                f"unknown top-level key {key!r}.{did_you_mean(key, TOP_LEVEL_KEYS)} "
                f"Valid keys: {', '.join(TOP_LEVEL_KEYS)}.",
            )
    for key in ("algorithm", "env"):
        if not isinstance(raw.get(key), str):
            fail(where, f"{key!r} is required and must be a string, got {raw.get(key)!r}.")

    algorithm = raw["algorithm"]
    algo_cls = _check_algorithm(where, algorithm)
    env_config = raw.get("env_config") or {}
    if not isinstance(env_config, dict):
        fail(where, f"'env_config' must be a mapping, got {env_config!r}.")
    _check_env(where, raw["env"])

    sections = raw.get("config") or {}
    if not isinstance(sections, dict):
        fail(where, f"'config' must be a mapping of AlgorithmConfig sections, got {sections!r}.")
    default_config = algo_cls.get_default_config()
    for section, kwargs in sections.items():
        _check_section(where, default_config, section, kwargs)
    if "multi_agent" in sections:
        sections = {**sections, "multi_agent": _multi_agent_section(where,
                                                                    sections["multi_agent"])}

    stop = raw.get("stop") or {}
    if not isinstance(stop, dict) or not stop:
        fail(where, f"'stop' must be a non-empty mapping like {{{ENV_STEPS_KEY}: 100000}}.")
    for key, value in stop.items():
        if key not in STOP_KEYS and str(key).split("/")[0] not in STOP_SECTIONS:
            close = difflib.get_close_matches(str(key), STOP_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            fail(where, f"unknown stop key {key!r}: Tune would never reach it.{hint} Use one "
                         f"of {list(STOP_KEYS)} or a result metric such as "
                         f"'{DEFAULT_METRIC}'.")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(where, f"stop.{key} must be a number, got {value!r}.")

    checkpoint_every = raw.get("checkpoint_every", 0)
    if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        fail(where, f"'checkpoint_every' must be an integer >= 0, got {checkpoint_every!r}.")
    interval = (sections.get("evaluation") or {}).get("evaluation_interval")
    if isinstance(interval, int) and interval > 0 and checkpoint_every % interval:
        fail(where, f"'checkpoint_every' ({checkpoint_every}) must be a multiple of "
                     f"evaluation.evaluation_interval ({interval}) so that every checkpoint "
                     "is scored by an evaluation; e.g. checkpoint_every: "
                     f"{interval * max(1, round(checkpoint_every / interval))}.")

    final_evaluation = _parse_final_evaluation(where, raw.get("final_evaluation"), interval)
    criterion = _parse_criterion(where, raw.get("pass"))
    if criterion is not None and criterion.metric == FINAL_EVALUATION_METRIC and (
            final_evaluation is None):
        fail(where, f"pass.metric {FINAL_EVALUATION_METRIC!r} needs a 'final_evaluation' "
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
        fail(
            where,
            f"unknown algorithm {name!r}.{did_you_mean(name, names)} "
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
        fail(where, message)


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
            "multi_agent",
        )
        if callable(getattr(config, name, None))
    ]
    if section not in valid_sections:
        fail(
            where,
            f"unknown config section {section!r}.{did_you_mean(section, valid_sections)} "
            f"Valid sections: {', '.join(valid_sections)}.",
        )
    if not isinstance(kwargs, dict):
        fail(where, f"config.{section} must be a mapping of keyword arguments, got {kwargs!r}.")
    params = _section_parameters(config, section)
    for key, value in kwargs.items():
        if key not in params:
            fail(
                where,
                f"unknown key {key!r} in config.{section}.{did_you_mean(key, params)} "
                f"Valid keys: {', '.join(sorted(params))}.",
            )
        if section != "multi_agent":  # RLlib takes a set, list or dict of policies there
            _check_type(f"{where}: config.{section}.{key}", getattr(config, key, None), value)


def _multi_agent_section(where: str, kwargs: dict) -> dict:
    """``config.multi_agent`` arguments from YAML: ``policies`` a list of ids (a set for
    RLlib), ``policy_mapping_fn`` (and a callable ``policies_to_train``) as
    ``"module:function"``, imported here so a typo fails before Ray starts."""
    from rllib_ext.registry import load

    resolved = dict(kwargs)
    if isinstance(resolved.get("policies"), list):
        resolved["policies"] = set(resolved["policies"])
    for key in ("policy_mapping_fn", "policies_to_train"):
        value = resolved.get(key)
        if isinstance(value, str):
            if ":" not in value:
                fail(where, f"config.multi_agent.{key} must name a function as "
                            f"'module:function', got {value!r}.")
            try:
                resolved[key] = load(value)
            except (ImportError, AttributeError) as e:
                fail(where, f"config.multi_agent.{key}={value!r} cannot be imported: {e}")
    if "policy_mapping_fn" in kwargs and not callable(resolved["policy_mapping_fn"]):
        fail(where, "config.multi_agent.policy_mapping_fn must be 'module:function' (called "
                    "with agent_id, episode), got "
                    f"{kwargs['policy_mapping_fn']!r}.")
    return resolved


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
        fail(where, f"'{name}' must be a mapping with keys {allowed}, got {raw!r}.")
    for key in raw:
        if key not in allowed:
            fail(
                where,
                f"unknown key {key!r} in '{name}'.{did_you_mean(key, allowed)} "
                f"Valid keys: {', '.join(allowed)}.",
            )


def _parse_final_evaluation(where: str, raw, interval) -> dict | None:
    if raw is None:
        return None
    _check_mapping(where, "final_evaluation", raw, FINAL_EVALUATION_KEYS)
    which = raw.get("checkpoint", "best")
    if which not in ("best", "last"):
        fail(where, f"final_evaluation.checkpoint must be 'best' or 'last', got {which!r}.")
    episodes = raw.get("episodes", 1000)
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        fail(where, f"final_evaluation.episodes must be an integer >= 1, got {episodes!r}.")
    if which == "best" and not (isinstance(interval, int) and interval > 0):
        fail(where, "final_evaluation.checkpoint 'best' needs checkpoints scored during the "
                     "run: set evaluation.evaluation_interval (e.g. 2), or use checkpoint: "
                     "last.")
    return {"checkpoint": which, "episodes": episodes}


def _parse_criterion(where: str, raw) -> PassCriterion | None:
    if raw is None:
        return None
    _check_mapping(where, "pass", raw, PASS_KEYS)
    for key in ("threshold", "within_env_steps"):
        if not isinstance(raw.get(key), (int, float)) or isinstance(raw.get(key), bool):
            fail(where, f"pass.{key} is required and must be a number, got {raw.get(key)!r}.")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        fail(where, f"pass.seeds must be a non-empty list of integers, got {seeds!r}.")
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
        fail(where, f"pass.min_mean must be a number, got {criterion.min_mean!r}.")
    if not 1 <= criterion.required <= len(seeds):
        fail(where, f"pass.min_passing must be in 1..{len(seeds)}, got {criterion.min_passing}.")
    return criterion


def _parse_tune(where: str, raw, default_config, *, stop: dict,
                checkpoints_during_run: bool) -> dict:
    """Checks the ``tune:`` section (see :data:`TUNE_KEYS`); returns it as written."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        for key in ("resources_per_trial", "resources"):
            if key in raw:
                fail(where, f"tune.{key}: an RLlib algorithm reserves its own resources per "
                             "trial (a placement group for its main process, env runners and "
                             "learners), so Tune takes none from the file. Set them in the "
                             "config instead, e.g. config.env_runners {num_env_runners: 2, "
                             "num_cpus_per_env_runner: 1}, config.learners {num_learners: 1, "
                             "num_gpus_per_learner: 1} or config.resources "
                             "{num_cpus_for_main_process: 2}; `rllib-ext tune` prints what "
                             "each trial reserves.")
    _check_mapping(where, "tune", raw, TUNE_KEYS)
    if raw.get("mode", "max") not in ("max", "min"):
        fail(where, f"tune.mode must be 'max' or 'min', got {raw.get('mode')!r}.")
    for key in ("metric", "checkpoint_score_attribute"):
        if key in raw:
            _check_metric(where, f"tune.{key}", raw[key])
    num_samples = raw.get("num_samples", 1)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        fail(where, f"tune.num_samples must be an integer >= 1, got {num_samples!r}.")
    space = raw.get("param_space") or {}
    if not isinstance(space, dict):
        fail(where, f"tune.param_space must be a mapping, got {space!r}.")
    known = default_config.to_dict()
    for key, spec in space.items():
        _check_config_key(where, "tune.param_space", key, known)
        search_space(f"{where}: tune.param_space.{key}", spec)
    _check_scheduler(where, raw.get("scheduler"), known, stop)
    _check_search_alg(where, raw, space)
    concurrent = raw.get("max_concurrent_trials")
    if concurrent is not None and (not isinstance(concurrent, int)
                                   or isinstance(concurrent, bool) or concurrent < 1):
        fail(where, f"tune.max_concurrent_trials must be an integer >= 1 (or left out: as "
                     f"many as the cluster's resources allow), got {concurrent!r}.")
    _check_checkpoint_scoring(where, raw, checkpoints_during_run)
    return raw


def _check_config_key(where: str, name: str, key, known) -> None:
    # A public property (train_batch_size_per_learner) is stored as its private attribute
    # (_train_batch_size_per_learner) in to_dict(); update_from_dict() takes either.
    if key not in known and f"_{key}" not in known:
        fail(
            where,
            f"unknown key {key!r} in {name}.{did_you_mean(key, known)} "
            "Keys are AlgorithmConfig attribute names such as lr, gamma, "
            "train_batch_size_per_learner.",
        )


def _check_metric(where: str, name: str, metric) -> None:
    """A result metric: a nested ``section/.../name`` or a top-level key Tune results have."""
    top_level = (*STOP_KEYS, EVALUATION_SCORE_KEY)
    if not isinstance(metric, str) or not metric:
        fail(where, f"{name} must be a result metric such as '{DEFAULT_METRIC}', got "
                     f"{metric!r}.")
    if "/" not in metric and metric not in top_level:
        hint = did_you_mean(metric, top_level)
        fail(where, f"{name}: {metric!r} is not a top-level result key.{hint} Use a nested metric "
                     f"such as '{DEFAULT_METRIC}' or "
                     f"'{EVALUATION_METRIC}', or one of {list(top_level)}.")


def _check_typed(where: str, name: str, raw, kinds: dict) -> tuple[str | None, dict]:
    """Checks ``name`` (``"kind"`` or ``{type: kind, <kind's keys>}``); returns its parts."""
    if raw is None:
        return None, {}
    if not isinstance(raw, (str, dict)):
        fail(where, f"{name} must be a type name or a mapping {{type: ..., ...}} with type one "
                     f"of {', '.join(kinds)}, got {raw!r}.")
    kind, options = typed(raw)
    if kind not in kinds:
        shown = "missing" if kind is None else repr(kind)
        fail(where, f"{name}: type {shown} is not one of {', '.join(kinds)}."
                     f"{did_you_mean(kind, kinds) if kind else ''}")
    for key in options:
        if key not in kinds[kind]:
            valid = ", ".join(("type", *kinds[kind]))
            prefixed = [k for k in kinds[kind] if k.startswith(str(key))]
            hint = (f" Did you mean {prefixed[0]!r}?" if prefixed
                    else did_you_mean(key, kinds[kind]))
            fail(where, f"unknown key {key!r} in {name} ({kind}).{hint} Valid keys: {valid}.")
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
        fail(where, f"{name} must be {kind} {' and '.join(b for b in bounds if b)}, got "
                     f"{value!r}.".replace("  ", " "))


def _check_scheduler(where: str, raw, known: dict, stop: dict) -> None:
    kind, options = _check_typed(where, "tune.scheduler", raw, SCHEDULERS)
    if kind in (None, "fifo"):
        return
    name = f"tune.scheduler ({kind})"
    time_attr = options.get("time_attr", "training_iteration")
    if time_attr not in TIME_ATTRS:
        fail(where, f"{name}.time_attr must be one of {', '.join(TIME_ATTRS)}, got "
                     f"{time_attr!r}.{did_you_mean(time_attr, TIME_ATTRS)}")
    if kind == "asha":
        if "max_t" not in options and time_attr not in stop:
            fail(where, f"{name}.max_t is required: the {time_attr} at which ASHA stops the "
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
            fail(where, f"{name}.hard_stop must be true or false, got "
                         f"{options['hard_stop']!r}.")
    else:  # pbt
        if "perturbation_interval" not in options:
            fail(where, f"{name}.perturbation_interval is required: the {time_attr} between "
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
            fail(where, f"{name}.perturbation_factors must be two positive numbers like "
                         f"[1.2, 0.8], got {factors!r}.")
        if not isinstance(options.get("synch", False), bool):
            fail(where, f"{name}.synch must be true or false, got {options['synch']!r}.")
        mutations = options.get("hyperparam_mutations")
        if not isinstance(mutations, dict) or not mutations:
            fail(where, f"{name}.hyperparam_mutations is required: a mapping of config keys "
                         "to search spaces, e.g. {lr: {loguniform: [0.0001, 0.01]}}, got "
                         f"{mutations!r}.")
        for key, spec in mutations.items():
            _check_config_key(where, f"{name}.hyperparam_mutations", key, known)
            mutation(f"{where}: tune.scheduler.hyperparam_mutations.{key}", spec)


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
            fail(where, f"tune.search_alg grid runs every combination of grid_search values, "
                         f"but {', '.join(others) or 'tune.param_space'} "
                         f"{'is' if len(others) <= 1 else 'are'} not a grid_search; use "
                         "grid_search there, or search_alg random (which samples the other "
                         "kinds and crosses them with the grids).")
    scheduler, _ = typed(raw.get("scheduler"))
    if scheduler == "pbt" and kind not in ("random", "grid"):
        fail(where, f"tune.scheduler pbt picks the configs itself (from hyperparam_mutations); "
                     f"Tune allows no search algorithm beside it: drop tune.search_alg {kind} "
                     "or use random.")
    if kind in EXTRA_SEARCH_ALGS:
        if not space:
            fail(where, f"tune.search_alg {kind} needs a tune.param_space to search.")
        if grids:
            fail(where, f"tune.search_alg {kind} cannot grid-search (tune.param_space."
                         f"{grids[0]}); use choice instead, or search_alg grid / random.")
        require_extra(where, kind)


def _check_checkpoint_scoring(where: str, raw: dict, checkpoints_during_run: bool) -> None:
    keys = [k for k in ("checkpoint_score_attribute", "checkpoint_score_order", "num_to_keep")
            if k in raw]
    if not keys:
        return
    order = raw.get("checkpoint_score_order")
    if order is not None and order not in ("max", "min"):
        fail(where, f"tune.checkpoint_score_order must be 'max' or 'min', got {order!r}.")
    if "num_to_keep" in raw:
        _check_number(where, "tune.num_to_keep", raw["num_to_keep"], integer=True, low=1)
        if typed(raw.get("scheduler"))[0] == "pbt":
            fail(where, "tune.num_to_keep cannot be used with scheduler pbt: PBT restores "
                         "trials from other trials' checkpoints, which would be deleted; drop "
                         "num_to_keep (every checkpoint is kept).")
    if not checkpoints_during_run:
        fail(where, f"tune.{keys[0]} chooses among the checkpoints of a trial, but this config "
                     "checkpoints only at the end: set checkpoint_every (iterations between "
                     "checkpoints) or evaluate (config.evaluation.evaluation_interval).")
