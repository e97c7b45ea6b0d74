"""Checking parameterised actions ``(k, (p_1, ..., p_K))`` before they touch an env's state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces


def parameterised_action_space(lows, highs) -> spaces.Tuple:
    """``Tuple(Discrete(K), Tuple(Box(lows[k], highs[k]) ...))`` with float32 1-D boxes."""
    return spaces.Tuple((
        spaces.Discrete(len(lows)),
        spaces.Tuple(tuple(
            spaces.Box(np.float32(np.atleast_1d(lo)), np.float32(np.atleast_1d(hi)),
                       dtype=np.float32)
            for lo, hi in zip(lows, highs, strict=True)
        )),
    ))


def check_render_mode(env_cls, render_mode) -> None:
    """Raises for a render mode the env class does not offer."""
    if render_mode is not None and render_mode not in env_cls.metadata["render_modes"]:
        raise ValueError(
            f"render_mode={render_mode!r} is not supported by {env_cls.__name__}; use None or "
            f"one of {env_cls.metadata['render_modes']}."
        )


def parse_parameterised_action(
    action, space: spaces.Tuple
) -> tuple[int, list[np.ndarray]]:
    """Validates ``action`` against a ``Tuple(Discrete(K), Tuple(Box_1..Box_K))`` space.

    Returns ``(k, [p_1, ..., p_K])`` with each ``p_i`` a float64 array of ``Box_i``'s shape.
    Parameters are *not* clipped here (the envs clip the chosen one, as the originals do).
    Raises ``ValueError`` naming the problem for a wrong index, a wrong structure or shape, or a
    non-finite parameter: bad actions must never silently corrupt the simulation.
    """
    num_actions = space.spaces[0].n
    param_spaces = space.spaces[1].spaces
    if (
        not isinstance(action, (Sequence, np.ndarray))
        or isinstance(action, str)
        or len(action) != 2
    ):
        raise ValueError(
            f"A parameterised action must be a pair (k, (p_1, ..., p_{num_actions})), got "
            f"{action!r}. Expected space: {space}."
        )
    k_raw, params = action
    k_arr = np.asarray(k_raw)
    if k_arr.shape != () or not np.issubdtype(k_arr.dtype, np.integer):
        raise ValueError(
            f"The discrete action must be an integer in [0, {num_actions}), got {k_raw!r}."
        )
    k = int(k_arr)
    if not 0 <= k < num_actions:
        raise ValueError(f"Discrete action {k} is out of range [0, {num_actions}).")
    if (
        not isinstance(params, (Sequence, np.ndarray))
        or isinstance(params, str)
        or len(params) != num_actions
    ):
        raise ValueError(
            f"The parameters must be a sequence of {num_actions} arrays (one per action, "
            f"shapes {[s.shape for s in param_spaces]}), got {params!r}."
        )
    parsed = []
    for i, (p, box) in enumerate(zip(params, param_spaces, strict=True)):
        try:
            arr = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"Parameter {i} is not numeric: {p!r}.") from None
        if arr.size != box.shape[0]:
            raise ValueError(
                f"Parameter {i} must have {box.shape[0]} value(s) (space {box}), got shape "
                f"{arr.shape}."
            )
        arr = arr.reshape(box.shape)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"Parameter {i} contains NaN or inf: {arr}.")
        parsed.append(arr)
    return k, parsed
