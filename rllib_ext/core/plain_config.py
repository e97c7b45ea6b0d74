"""AlgorithmConfigs as plain data (numbers, strings, bools, None, lists, dicts) for Tune.

Tune replaces every other object in a ``param_space`` (a class, a function, a
``functools.partial``) by a placeholder that it resolves from memory only, and neither the
objects nor the map is saved with the experiment. ``tune.Tuner.restore(path, "PDQN")``
without the original ``param_space`` then cannot resolve them, and a trial that had not
started before the interruption fails when it is created, e.g. with ``ValueError: `module`
(('__ref_ph', 'e13bb6c8') must be type or string (classpath)!`` (the placeholder of RLlib's
default ``sample_collector`` class). ``config.to_dict()`` holds a dozen such objects, almost
all RLlib's defaults.

:func:`plain_config_dict` writes a config so that nothing needs resolving:

* values equal to the algorithm's defaults are left out: an Algorithm given a dict starts from
  its ``get_default_config()`` (this drops RLlib's default classes and functions);
* a single callbacks class becomes its classpath string, which RLlib reads back itself;
* for rllib_ext's configs (:class:`PlainDictConfig`), other classes and module-level
  functions become ``{"__object__": "module:qualname"}``, and ``functools.partial`` objects of
  them with plain keyword arguments add ``"kwargs"``; their ``update_from_dict`` turns these
  back into the objects. Only top-level values and the items of top-level lists are written
  so (``env``, ``callbacks``, ``callbacks_on_*``).

Anything else stays an object: RLlib's built-in configs cannot read the ``__object__`` form,
so e.g. a function in their callbacks still needs the ``param_space`` passed to
``Tuner.restore`` (``rllib-ext tune --resume`` does that).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

#: Key of an object written as plain data: ``{"__object__": "module:qualname"}``.
OBJECT_KEY = "__object__"
#: Keyword arguments of a ``functools.partial`` written as plain data.
KWARGS_KEY = "kwargs"


def is_plain(value) -> bool:
    """True for numbers, strings, bools, None and lists, tuples and str-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def _path(obj) -> str | None:
    """``"module:qualname"`` of an importable class or module-level function, else None."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or module == "__main__" or "<" in name:
        return None
    try:
        found = _load(f"{module}:{name}")
    except (ImportError, AttributeError):
        return None
    return f"{module}:{name}" if found is obj else None


def _load(path: str):
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _encode(value):
    """``value`` in the ``__object__`` form, or ``value`` itself if it has none."""
    if isinstance(value, functools.partial):
        path = _path(value.func)
        if path is None or value.args or not is_plain(value.keywords):
            return value
        return {OBJECT_KEY: path, KWARGS_KEY: dict(value.keywords)}
    if isinstance(value, type) or callable(value):
        path = _path(value)
        return value if path is None else {OBJECT_KEY: path}
    return value


def _decode(value):
    """The object an ``__object__`` entry names (a partial with its ``kwargs``)."""
    if isinstance(value, dict) and isinstance(value.get(OBJECT_KEY), str):
        obj = _load(value[OBJECT_KEY])
        kwargs = value.get(KWARGS_KEY)
        return functools.partial(obj, **kwargs) if kwargs is not None else obj
    return value


def _encode_top_level(value):
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return _encode(value)


def _decode_top_level(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return _decode(value)


def _classpath(cls) -> str | None:
    """RLlib's ``"module.Class"`` form of a class, if RLlib's reader finds it again."""
    from ray.rllib.utils.serialization import deserialize_type

    path = f"{cls.__module__}.{cls.__qualname__}"
    try:
        return path if deserialize_type(path) is cls else None
    except Exception:
        return None


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays
        return False


def plain_config_dict(config) -> dict[str, Any]:
    """``config.to_dict()`` for a Tune ``param_space``, in plain data where the algorithm can
    read it back (see the module docstring): the values that differ from the algorithm's
    defaults, a callbacks class as its classpath, and for rllib_ext's configs classes and
    functions in the ``__object__`` form."""
    algo_class = getattr(config, "algo_class", None)
    defaults = (algo_class.get_default_config() if algo_class is not None
                else type(config)()).to_dict()
    ours = isinstance(config, PlainDictConfig)
    space = {}
    for key, value in config.to_dict().items():
        if key in defaults and _equal(value, defaults[key]):
            continue
        if key == "callbacks" and isinstance(value, type) and _classpath(value):
            value = _classpath(value)
        elif ours and not is_plain(value):
            value = _encode_top_level(value)
        space[key] = value
    return space


class PlainDictConfig:
    """Mixin for rllib_ext's ``AlgorithmConfig`` classes: ``update_from_dict`` also reads the
    ``{"__object__": "module:qualname"}`` entries that :func:`plain_config_dict` writes, so a
    Tune trial created from a plain ``param_space`` (e.g. after ``Tuner.restore``) gets the
    same classes and functions."""

    def update_from_dict(self, config_dict):
        return super().update_from_dict(
            {key: _decode_top_level(value) for key, value in config_dict.items()})
