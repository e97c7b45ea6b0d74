"""Action-gradient hooks: what to do with dQ/da before it is chained into an actor's weights.

Bounded continuous actions (P-DQN's action parameters, PA-DDPG's outputs) are produced by
unbounded networks; following dQ/da blindly drives them past their bounds. Hausknecht & Stone
(2016, "Deep Reinforcement Learning in Parameterized Action Space", Sec. 4.3.3) *invert* the
gradient as an output approaches a bound:

    grad <- grad * (high - a) / (high - low)   if grad > 0   (a wants to increase)
    grad <- grad * (a - low)  / (high - low)   otherwise

so the step shrinks to 0 at the bound and changes sign past it (pushing a back inside).

This is **not** a weight-gradient postprocess (RLlib's ``postprocess_gradients_for_module`` only
sees dL/dtheta): a learner computes ``g = dQ/da`` for its action outputs ``a``, passes
``g`` through an :class:`ActionGradientHook`, and then back-propagates the surrogate
``-(hook(g) * a).sum()`` into the actor (``a`` keeps its graph, ``hook(g)`` does not).

Strategies (``config.training(action_gradient_strategy=...)``, or subclass the hook):

- ``"invert"`` (default): the rule above;
- ``"zero"``: keep g, but zero the components that would push an output further past (or onto)
  a bound it has reached;
- ``"squash"``: the actor's outputs are tanh-bounded (the module squashes), g passes unchanged;
- ``"none"``: g unchanged and outputs unbounded (the env clips).
"""

from __future__ import annotations

import torch

STRATEGIES = ("invert", "zero", "squash", "none")


def invert_gradients(
    grad: torch.Tensor, values: torch.Tensor, low, high
) -> torch.Tensor:
    """Hausknecht & Stone's inverting gradients; returns a new tensor (inputs untouched).

    Args:
        grad: dQ/da, the *ascent* direction, shape (..., P).
        values: the actions a where the gradient was taken, same shape as ``grad``.
        low, high: bounds, broadcastable to ``grad`` (scalars or per-dimension tensors).

    Vectorised with ``torch.where`` (no boolean-index scatter, no host round trip), so it runs
    on whatever device the inputs live on.
    """
    low = torch.as_tensor(low, dtype=grad.dtype, device=grad.device)
    high = torch.as_tensor(high, dtype=grad.dtype, device=grad.device)
    span = high - low
    increase = (high - values) / span
    decrease = (values - low) / span
    return grad * torch.where(grad > 0, increase, decrease)


def zero_past_bounds(grad: torch.Tensor, values: torch.Tensor, low, high) -> torch.Tensor:
    """Zeroes the gradient components that push a value at/over a bound further out."""
    low = torch.as_tensor(low, dtype=grad.dtype, device=grad.device)
    high = torch.as_tensor(high, dtype=grad.dtype, device=grad.device)
    outward = ((grad > 0) & (values >= high)) | ((grad < 0) & (values <= low))
    return torch.where(outward, torch.zeros_like(grad), grad)


class ActionGradientHook:
    """Post-processes dQ/da for bounded actions; see the module docstring.

    Subclass and override :meth:`__call__` for a custom rule. With "squash" the module bounds
    its outputs with tanh (the configs pass ``squash`` in the model config), so the gradient
    passes unchanged.
    """

    def __init__(self, strategy: str = "invert"):
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown action-gradient strategy {strategy!r}; choose one of {STRATEGIES}."
            )
        self.strategy = strategy

    def __call__(self, grad: torch.Tensor, values: torch.Tensor, low, high) -> torch.Tensor:
        if self.strategy == "invert":
            return invert_gradients(grad, values, low, high)
        if self.strategy == "zero":
            return zero_past_bounds(grad, values, low, high)
        return grad  # "squash" (bounded by the module) and "none"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strategy!r})"
