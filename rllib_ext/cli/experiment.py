"""One parsed, checked experiment file (:class:`Experiment`): the algorithm config it builds
(with the CLI's callbacks), its evaluation settings and, through
:class:`~rllib_ext.cli.tune_factory.TuneFactory`, its Tune objects. Made by
:func:`rllib_ext.cli.config_file.load_experiment`."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rllib_ext.cli.result_callbacks import (
    append_callback,
    cap_torch_threads,
    record_evaluation_score,
)
from rllib_ext.cli.schema import (
    EVALUATION_METRIC,
    RLLIB_SUPPRESS_HINT,
    ConfigError,
    PassCriterion,
)
from rllib_ext.cli.tune_factory import TuneFactory


@dataclass
class Experiment(TuneFactory):
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
            cap_torch_threads(config)
            if self.evaluation_interval:
                append_callback(config, "on_train_result", functools.partial(
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
