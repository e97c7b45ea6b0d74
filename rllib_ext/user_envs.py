"""Users' own environments named by a string (an experiment file's ``env:``), resolved on the
driver and made again in every Ray worker.

:func:`resolve_env` reads the string, trying in order:

1. **a registered name**: an rllib_ext env (``rllib_ext/Platform-v0``), a gymnasium id
   (``CartPole-v1``) or a name given to ``ray.tune.register_env``. RLlib makes it as usual:
   a gymnasium id with ``gym.make(id, **env_config)``, a Tune env creator with the env config.
2. **``module:name``** (gymnasium's form); ``module`` is imported first, and then
   ``name`` is

   * the gymnasium id that importing ``module`` registered (``my_envs:Maze-v0``), made with
     ``gym.make("my_envs:Maze-v0", **env_config)``, which imports the module in each worker;
   * else an attribute of ``module`` (before a versionless gymnasium id), the **entry
     point**: a ``gym.Env`` class or a factory function, called like a
     ``ray.tune.register_env`` creator, ``entry_point(env_config)`` (``env_config`` is
     RLlib's ``EnvContext``: the config's ``env_config`` plus ``worker_index``,
     ``vector_index`` and ``num_workers``).

   :func:`register_user_env` registers an env creator for either with Tune under the string
   itself, so ``config.env`` stays that string: plain data for Tune's ``param_space`` and
   for checkpoints, and the same name on every worker, where the creator imports the module
   (RLlib's own look-up of an unregistered string would take ``pkg.mod:Id-v0`` for a class
   path).
3. **``package.module.Class``** (the older form, ``gym.Env`` classes only): RLlib gets the
   class itself and calls ``Class(env_config)``; a factory found this way is an entry point.

A module that cannot be imported raises :class:`EnvNotFoundError` with the import's own error.
The module must also be importable in Ray's worker processes: :func:`module_source` names the
file or package folder to ship in the job's ``runtime_env`` (``py_modules``); the CLI does it.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Kinds of :class:`UserEnv`.
REGISTERED, GYMNASIUM, ENTRY_POINT, CLASS = "registered", "gymnasium", "entry point", "class"
_SHIP_HINT = (
    "Ray workers must be able to import the env's module: `rllib-ext` ships the module beside "
    "the experiment file in the job's runtime_env; from Python pass ray.init(runtime_env="
    "{'py_modules': [<the module's file or package folder>]}), or install it on every node.")


class EnvNotFoundError(ValueError):
    """The env string names nothing that can be made; the message says why and the fix.
    ``import_error`` is True when importing the env's module failed."""

    def __init__(self, message: str, *, import_error: bool = False):
        super().__init__(message)
        self.import_error = import_error


@dataclass(frozen=True)
class UserEnv:
    """An env string, resolved (see the module docstring)."""

    #: The string as written.
    name: str
    #: REGISTERED, GYMNASIUM, ENTRY_POINT or CLASS.
    kind: str
    #: The module imported for it (None for a registered name).
    module: str | None = None
    #: The entry point or class (None for a registered name or a gymnasium id).
    obj: Any = None

    @property
    def rllib_env(self):
        """What ``config.environment(env=...)`` gets: the class for the older
        ``package.module.Class`` form, else the string (an entry point after
        :func:`register_user_env`)."""
        return self.obj if self.kind == CLASS else self.name


def resolve_env(name: str) -> UserEnv:
    """Resolves an env string (see the module docstring); imports the env's module.

    Raises :class:`EnvNotFoundError` naming the problem: the import's own error, a missing
    attribute (with the closest names in the module), or an unknown name.
    """
    import gymnasium as gym

    from rllib_ext.core.rllib_compat import tune_env_registered
    from rllib_ext.registry import ENVIRONMENTS, MULTI_AGENT_ENVIRONMENTS

    if name in ENVIRONMENTS or name in MULTI_AGENT_ENVIRONMENTS or name in gym.envs.registry:
        return UserEnv(name, REGISTERED)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = _import(name, module_name)
        except EnvNotFoundError:
            # A name a user gave to ray.tune.register_env that merely contains ":".
            if tune_env_registered(name):
                return UserEnv(name, REGISTERED)
            raise
        if attr in gym.envs.registry:
            return UserEnv(name, GYMNASIUM, module_name)
        try:
            obj = _attribute(name, module, attr)
        except EnvNotFoundError:
            if _is_gym_id(attr):  # e.g. a versionless id: gym.make picks the latest version
                return UserEnv(name, GYMNASIUM, module_name)
            raise
        return UserEnv(name, ENTRY_POINT, module_name, obj)
    if tune_env_registered(name) or _is_gym_id(name):
        return UserEnv(name, REGISTERED)
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        raise EnvNotFoundError(_unknown(name))
    try:
        module = _import(name, module_name)
    except EnvNotFoundError as e:
        raise EnvNotFoundError(f"{_unknown(name)} As a 'package.module.Class' path: {e}",
                               import_error=True) from None
    obj = _attribute(name, module, attr)
    if isinstance(obj, type) and issubclass(obj, gym.Env):
        return UserEnv(name, CLASS, obj.__module__, obj)
    return UserEnv(name, ENTRY_POINT, module_name, obj)


def register_user_env(env: UserEnv) -> None:
    """Registers the env creator of a ``module:name`` env (an entry point or a gymnasium id)
    with Tune under ``env.name``; nothing to do for the other kinds. Before ``ray.init()``
    the registration waits in this process and is written to the cluster when Ray starts;
    call it again after ``ray.init()`` on a fresh cluster, as :func:`rllib_ext.register`."""
    if env.kind == ENTRY_POINT:
        creator = functools.partial(make_entry_point_env, entry_point=env.name)
    elif env.kind == GYMNASIUM:
        creator = functools.partial(make_gymnasium_env, env_id=env.name)
    else:
        return
    from ray.tune.registry import register_env

    register_env(env.name, creator)


def make_entry_point_env(env_config, *, entry_point: str):
    """The Tune env creator of an entry point: imports ``module`` of ``"module:name"`` (or
    ``"package.module.name"``) in this process and returns ``name(env_config)``."""
    module_name, sep, attr = entry_point.partition(":")
    if not sep:
        module_name, _, attr = entry_point.rpartition(".")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ImportError(
            f"cannot load the env entry point {entry_point!r} in this Ray worker "
            f"(pid {os.getpid()}): {type(e).__name__}: {e}. {_SHIP_HINT}") from e
    return obj(env_config)


def make_gymnasium_env(env_config, *, env_id: str):
    """The Tune env creator of a ``"module:Id-v0"`` gymnasium id: imports ``module`` in this
    process and returns ``gym.make(Id-v0, **env_config)``, as RLlib makes gymnasium ids."""
    import gymnasium as gym

    module_name, _, gym_id = env_id.partition(":")
    try:
        importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(
            f"cannot import {module_name!r} for the gymnasium env {env_id!r} in this Ray "
            f"worker (pid {os.getpid()}): {type(e).__name__}: {e}. {_SHIP_HINT}") from e
    return gym.make(gym_id, **env_config)


def register_env_of_config(env) -> None:
    """Registers ``env`` (a config's ``env``) with Tune if it is a ``module:name`` string that
    this process has not registered (e.g. before restoring a checkpoint in a new process).
    Anything else, and a string that does not resolve, is left to RLlib."""
    from rllib_ext.core.rllib_compat import tune_env_registered

    if not isinstance(env, str) or tune_env_registered(env):
        return
    try:
        register_user_env(resolve_env(env))
    except EnvNotFoundError:
        pass


def add_import_paths(*folders: str | Path) -> None:
    """Makes ``folders`` importable: appended to ``sys.path`` (after the installed packages,
    so a user's file never shadows one), each once."""
    for folder in folders:
        folder = str(Path(folder).resolve())
        if folder not in sys.path:
            sys.path.append(folder)


def module_source(module_name: str) -> str | None:
    """The local file or package folder of ``module_name``'s top-level module that Ray's
    workers need shipped (``runtime_env={"py_modules": [...]}``): the user's own code, not
    an installed package (those must be installed on every node, like any dependency) and
    not rllib_ext (shipped by the CLI anyway). None when there is nothing to ship."""
    top = module_name.partition(".")[0]
    if top == "rllib_ext":
        return None
    module = sys.modules.get(top)
    if module is None:
        try:
            module = importlib.import_module(top)
        except ImportError:
            return None
    paths = list(getattr(module, "__path__", None) or [])
    if paths:
        if len(paths) != 1:  # a namespace package spread over folders: not shippable
            return None
        source = paths[0]
    else:
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py"):  # built-in or compiled
            return None
    source = str(Path(source).resolve())
    installed = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                 *(sysconfig.get_paths().get(k) for k in ("purelib", "platlib", "stdlib"))}
    for root in filter(None, installed):
        if Path(source).is_relative_to(Path(root).resolve()):
            return None
    return source


def _import(name: str, module_name: str):
    """Imports ``module_name`` for the env ``name``; EnvNotFoundError with the import's error."""
    try:
        return importlib.import_module(module_name)
    except Exception as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name is not None and (
            module_name == e.name or module_name.startswith(e.name + "."))
        if missing:
            raise EnvNotFoundError(
                f"env {name!r}: cannot import module {module_name!r} "
                f"(ModuleNotFoundError: {e}).", import_error=True) from None
        where = _failing_line(e)
        raise EnvNotFoundError(
            f"env {name!r}: importing module {module_name!r} failed: {type(e).__name__}: "
            f"{e}{f' (at {where})' if where else ''}. Fix the module, or install what it "
            "imports.", import_error=True) from None


def _failing_line(error: BaseException) -> str:
    """``file:line`` of the innermost frame of ``error`` outside importlib, or ''."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith("<frozen")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _attribute(name: str, module, attr: str):
    """``module.attr`` (dotted ``attr`` allowed), callable; EnvNotFoundError otherwise."""
    import gymnasium as gym

    obj = module
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        choices = [n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                   and getattr(v, "__module__", None) == module.__name__]
        close = difflib.get_close_matches(attr, choices + list(gym.envs.registry), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise EnvNotFoundError(
            f"env {name!r}: module {module.__name__!r} ({getattr(module, '__file__', '?')}) "
            f"has no attribute {attr!r} and registers no gymnasium id {attr!r}.{hint} Name a "
            "gym.Env class or a factory function (called with env_config) as "
            "'module:Name', or a gymnasium id the module registers as 'module:Id-v0'."
        ) from None
    if not callable(obj):
        raise EnvNotFoundError(
            f"env {name!r}: {module.__name__}.{attr} is a {type(obj).__name__}, not an env "
            "class or factory; name a gym.Env class or a function env_config -> env.")
    return obj


def _is_gym_id(env_id: str) -> bool:
    """True if gymnasium makes ``env_id`` (registered, also through a namespace or the latest
    version of a versionless id)."""
    import gymnasium as gym

    if env_id in gym.envs.registry:
        return True
    try:
        gym.spec(env_id)
    except Exception:
        return False
    return True


def _unknown(name: str) -> str:
    import gymnasium as gym

    from rllib_ext.registry import ENVIRONMENTS, MULTI_AGENT_ENVIRONMENTS

    ours = sorted(ENVIRONMENTS) + sorted(MULTI_AGENT_ENVIRONMENTS)
    known = ours + sorted(gym.envs.registry)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown env {name!r}.{hint} Use a gymnasium id (e.g. 'CartPole-v1'), an rllib_ext "
        f"env ({', '.join(ours) or 'none registered'}), a name registered "
        "with ray.tune.register_env, or your own env as 'module:Class' / 'module:factory' "
        "(called with env_config) or 'module:Id-v0' (a gymnasium id the module registers); "
        "`rllib-ext list` shows the rllib_ext environments."
    )
