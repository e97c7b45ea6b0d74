"""Parameterised action spaces: which forms are accepted and how parameters are laid out.

Accepted forms (K discrete actions; action k has P_k >= 0 continuous parameters):

- nested ``Tuple(Discrete(K), Tuple(Box(P_1), ..., Box(P_K)))`` (gym-platform, gym-goal);
- flat-tuple ``Tuple(Discrete(K), Box(P_1), ..., Box(P_K))`` (MP-DQN's wrappers);
- flat ``Tuple(Discrete(K), Box(P))`` plus an explicit ``param_layout=[P_1, ..., P_K]`` with
  ``sum(P_k) == P`` (gym-hybrid style; an action may have zero parameters).

Inside the learner all parameters live in one vector ``x`` of size ``P = sum(P_k)`` in RLlib's
normalised action range [-1, 1]; action k owns ``x[offsets[k]:offsets[k + 1]]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

NESTED, FLAT_TUPLE, FLAT_BOX = "nested", "flat_tuple", "flat_box"

ACCEPTED_FORMS = (
    "Tuple(Discrete(K), Tuple(Box(P_1,), ..., Box(P_K,))), "
    "Tuple(Discrete(K), Box(P_1,), ..., Box(P_K,)), or "
    "Tuple(Discrete(K), Box(P,)) with training(param_layout=[P_1, ..., P_K])"
)


@dataclass(frozen=True)
class ActionLayout:
    form: str
    num_actions: int
    param_dims: tuple[int, ...]

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self.param_dims)]))

    @property
    def total_params(self) -> int:
        return int(sum(self.param_dims))

    def owner_mask(self) -> torch.Tensor:
        """(K, P) float mask: row k is 1 on action k's parameter slots."""
        mask = torch.zeros(self.num_actions, self.total_params)
        off = self.offsets
        for k in range(self.num_actions):
            mask[k, off[k]:off[k + 1]] = 1.0
        return mask

    def split(self, params):
        """(..., P) -> list of K (..., P_k) views (empty ones for parameter-less actions)."""
        off = self.offsets
        return [params[..., off[k]:off[k + 1]] for k in range(self.num_actions)]

    def to_env(self, k, params):
        """(discrete, flat params) -> the action structure of the env's action space."""
        if self.form == FLAT_BOX:
            return k, params
        parts = tuple(self.split(params))
        return (k, parts) if self.form == NESTED else (k, *parts)

    def from_env(self, action) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse of :meth:`to_env` for batched tensors: the env's action structure ->
        (discrete (B,) long, flat params (B, P) in the parts' dtype)."""
        k, rest = action[0], action[1:]
        if self.form == NESTED:
            rest = rest[0]
        k = torch.as_tensor(k).long().reshape(-1)
        boxes = [torch.as_tensor(part).reshape(k.shape[0], -1) if torch.as_tensor(part).numel()
                 else torch.zeros(k.shape[0], 0, device=k.device) for part in rest]
        if not boxes:
            return k, torch.zeros(k.shape[0], 0, device=k.device)
        return k, torch.cat(boxes, dim=-1)


def _is_1d_box(space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 1


def layout_from_space(space: gym.Space, param_layout=None) -> ActionLayout:
    """The layout of ``space``; ``ValueError`` showing the space and the accepted forms."""

    def reject(why: str):
        raise ValueError(
            f"Unsupported action space {space}: {why}. Accepted forms: {ACCEPTED_FORMS}."
        )

    if not isinstance(space, spaces.Tuple) or len(space.spaces) < 2:
        reject("need a Tuple whose first element is Discrete(K)")
    discrete = space.spaces[0]
    if not isinstance(discrete, spaces.Discrete) or discrete.start != 0:
        reject("the first element must be Discrete(K) starting at 0")
    k = int(discrete.n)
    rest = space.spaces[1:]
    if len(rest) == 1 and isinstance(rest[0], spaces.Tuple):
        boxes, form = rest[0].spaces, NESTED
    elif len(rest) == 1 and _is_1d_box(rest[0]) and param_layout is not None:
        dims = tuple(int(d) for d in param_layout)
        if len(dims) != k or any(d < 0 for d in dims) or sum(dims) != rest[0].shape[0]:
            raise ValueError(
                f"param_layout={list(param_layout)} does not fit {space}: it needs {k} "
                f"non-negative entries (one per discrete action) summing to "
                f"{rest[0].shape[0]}, e.g. training(param_layout=[1] * {k}) for one parameter "
                "per action."
            )
        return ActionLayout(FLAT_BOX, k, dims)
    elif len(rest) == 1 and _is_1d_box(rest[0]):
        if k == 1:
            return ActionLayout(FLAT_BOX, 1, (rest[0].shape[0],))
        reject(
            f"a single Box({rest[0].shape[0]}) for {k} actions is ambiguous; set "
            "training(param_layout=[P_1, ..., P_K]) to say which parameters belong to which "
            "action"
        )
    else:
        boxes, form = rest, FLAT_TUPLE
    if len(boxes) != k:
        reject(f"{k} discrete actions but {len(boxes)} parameter Boxes")
    if not all(_is_1d_box(b) for b in boxes):
        reject("every parameter space must be a 1-D Box")
    if param_layout is not None:
        raise ValueError(
            f"param_layout={list(param_layout)} is only for a flat Tuple(Discrete, Box(P)) "
            f"action space; {space} already says which Box belongs to which action. Remove it."
        )
    return ActionLayout(form, k, tuple(int(b.shape[0]) for b in boxes))


def param_boxes(space: spaces.Tuple, layout: ActionLayout) -> list[spaces.Box]:
    """The Box spaces holding the parameters, in layout order."""
    if layout.form == NESTED:
        return list(space.spaces[1].spaces)
    return list(space.spaces[1:])
