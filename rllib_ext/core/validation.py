"""One way to check config knobs, shared by every config of the plugin.

:class:`KnobChecks` is a mixin for an ``AlgorithmConfig`` subclass. Each check reads a knob,
tests its type, finiteness and range, and raises (through RLlib's config error,
:func:`~rllib_ext.core.rllib_compat.config_value_error`) a
``ValueError`` that names the knob, the bad value and the call that fixes it, e.g.::

    grad_clip=-1 must be None or a finite number > 0; fix it with
    config.training(grad_clip=10.0).

:meth:`KnobChecks.check_rllib_knobs` covers the ``AlgorithmConfig`` knobs every algorithm of the
plugin relies on (``lr``, ``gamma``, ``grad_clip``, batch size, env runner and learner counts,
``model_config`` widths); each config's ``validate()`` adds its own knobs with the same checks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

from rllib_ext.core.rllib_compat import config_value_error, user_model_config

#: RLlib's ``model_config`` keys that hold lists of hidden-layer widths.
MODEL_WIDTH_KEYS = ("fcnet_hiddens", "head_fcnet_hiddens", "post_fcnet_hiddens")
#: Which ``AlgorithmConfig`` method sets an RLlib knob (for the "fix it with" part).
RLLIB_KNOB_METHODS = {
    "num_env_runners": "env_runners",
    "num_envs_per_env_runner": "env_runners",
    "rollout_fragment_length": "env_runners",
    "sample_timeout_s": "env_runners",
    "num_learners": "learners",
    "seed": "debugging",
}


def is_real(value: Any) -> bool:
    """True for a finite int or float (bool and numeric strings are not numbers)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    """True for an int (numpy ints included), not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def describe_range(low, high, low_open, high_open) -> str:
    """"> 0", "in [0, 1]", "in (0, 1]", ... for a check's message."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def in_range(value, low, high, low_open, high_open) -> bool:
    """Whether ``value`` lies within the (half-)open or closed bounds."""
    return not ((low is not None and (value <= low if low_open else value < low))
                or (high is not None and (value >= high if high_open else value > high)))


class KnobChecks:
    """Checks of config knobs (mixin for ``AlgorithmConfig`` subclasses; see the module
    docstring). ``method`` names the config call that sets the knob (default: ``training``);
    ``example`` is a good value shown in the fix."""

    def _knob_error(self, name: str, value: Any, requirement: str, example: Any,
                    method: str | None = None) -> None:
        method = method or RLLIB_KNOB_METHODS.get(name, "training")
        config_value_error(self, f"{name}={value!r} must be {requirement}; fix it with "
                          f"config.{method}({name}={example!r}).")

    def check_number(self, name: str, *, low: float | None = None, high: float | None = None,
                     low_open: bool = False, high_open: bool = False, integer: bool = False,
                     none_ok: bool = False, example: Any, method: str | None = None,
                     value: Any = None) -> None:
        """A finite number (an int if ``integer``) within the bounds; None allowed with
        ``none_ok``. ``value`` defaults to the knob's attribute."""
        value = getattr(self, name) if value is None else value
        if value is None and none_ok:
            return
        ok = (is_integer(value) if integer else is_real(value)) and in_range(
            value, low, high, low_open, high_open)
        if not ok:
            kind = "an integer" if integer else "a finite number"
            bounds = describe_range(low, high, low_open, high_open)
            requirement = f"{'None or ' if none_ok else ''}{kind}{' ' + bounds if bounds else ''}"
            self._knob_error(name, value, requirement, example, method)

    def check_choice(self, name: str, options: Iterable, *, method: str | None = None) -> None:
        """One of ``options`` (the fix shows the config class's default)."""
        options = list(options)
        value = getattr(self, name)
        if not any(value == option and type(value) is type(option) for option in options):
            self._knob_error(name, value, f"one of {options}", getattr(type(self)(), name),
                             method)

    def check_bool(self, name: str, *, method: str | None = None) -> None:
        """True or False (not 0/1 or a string)."""
        value = getattr(self, name)
        if not isinstance(value, bool):
            self._knob_error(name, value, "True or False", getattr(type(self)(), name), method)

    def check_widths(self, name: str, widths: Any = None, *, example=(256, 256),
                     method: str | None = None) -> None:
        """A list of positive int layer widths, [] for none (``widths`` defaults to the
        knob)."""
        widths = getattr(self, name) if widths is None else widths
        ok = isinstance(widths, (list, tuple)) and all(is_integer(w) and w > 0 for w in widths)
        if not ok:
            self._knob_error(name, widths, "a list of positive integer layer widths",
                             list(example), method)

    def check_param_layout(self, example=(1, 1, 1)) -> None:
        """``param_layout``: None, or a non-empty list of integers >= 0 (parameters per
        discrete action)."""
        layout = self.param_layout
        if layout is not None and not (isinstance(layout, (list, tuple)) and layout and all(
                is_integer(p) and p >= 0 for p in layout)):
            self._knob_error("param_layout", layout,
                             "None or a list of integers >= 0 (parameters per action)",
                             list(example))

    def check_numbers(self, name: str, *, low: float | None = None,
                      high: float | None = None, example: Any) -> None:
        """None or a flat or nested list of finite numbers within [low, high]."""
        value = getattr(self, name)
        if value is None:
            return
        flat = _flatten(value.tolist() if hasattr(value, "tolist") else value)
        if flat is None or not flat or not all(
                is_real(v) and in_range(v, low, high, False, False) for v in flat):
            bounds = describe_range(low, high, False, False)
            self._knob_error(name, value, "None or a list of finite numbers"
                             f"{' ' + bounds if bounds else ''}", example)

    def check_learning_rate(self, name: str, *, example: float) -> None:
        """A finite step size > 0, or an RLlib schedule ``[[timestep, value], ...]`` of them
        starting at timestep 0."""
        value = getattr(self, name)
        if isinstance(value, (list, tuple)):
            ok = len(value) > 0 and all(
                isinstance(p, (list, tuple)) and len(p) == 2 and is_integer(p[0]) and p[0] >= 0
                and is_real(p[1]) and p[1] > 0 for p in value) and value[0][0] == 0
            if not ok:
                self._knob_error(name, value, "a finite number > 0 or a schedule [[0, rate], "
                                 "[timestep, rate], ...] of such rates", example)
            return
        self.check_number(name, low=0, low_open=True, example=example)

    def check_rllib_knobs(self, *, learning_rates: Iterable[str] = ("lr",),
                          lr_example: float = 1e-3, gamma_example: float = 0.99) -> None:
        """The ``AlgorithmConfig`` knobs every algorithm of the plugin relies on."""
        for name in learning_rates:
            self.check_learning_rate(name, example=lr_example)
        self.check_number("gamma", low=0, high=1, example=gamma_example)
        self.check_number("grad_clip", low=0, low_open=True, none_ok=True, example=10.0)
        self.check_number("train_batch_size_per_learner", low=1, integer=True, example=256)
        self.check_number("num_env_runners", low=0, integer=True, example=0)
        self.check_number("num_envs_per_env_runner", low=1, integer=True, example=1)
        self.check_number("num_learners", low=0, integer=True, example=0)
        if self.rollout_fragment_length != "auto":
            self.check_number("rollout_fragment_length", low=1, integer=True, example="auto")
        self.check_number("sample_timeout_s", low=0, low_open=True, none_ok=True,
                          example=60.0)
        self.check_number("seed", low=0, integer=True, none_ok=True, example=0)
        # The user's part of the model config (the algorithm's auto-includes come from knobs
        # checked by the config itself).
        model_config = user_model_config(self)
        if dataclasses.is_dataclass(model_config):
            model_config = dataclasses.asdict(model_config)
        if not isinstance(model_config, dict):
            config_value_error(self, f"model_config={model_config!r} must be a dict; fix it with "
                              "config.rl_module(model_config={'fcnet_hiddens': [256, 256]}).")
        for key in MODEL_WIDTH_KEYS:
            if key in model_config:
                widths = model_config[key]
                ok = isinstance(widths, (list, tuple)) and all(
                    is_integer(w) and w > 0 for w in widths)
                if not ok:
                    config_value_error(self,
                        f"model_config[{key!r}]={widths!r} must be a list of positive integer "
                        "layer widths; fix it with "
                        f"config.rl_module(model_config={{{key!r}: [256, 256]}}).")


def _flatten(value: Any) -> list | None:
    """The leaves of a (nested) list/tuple, or None when ``value`` is not one."""
    if not isinstance(value, (list, tuple)):
        return None
    leaves = []
    for item in value:
        if isinstance(item, (list, tuple)):
            inner = _flatten(item)
            if inner is None:
                return None
            leaves.extend(inner)
        else:
            leaves.append(item)
    return leaves
