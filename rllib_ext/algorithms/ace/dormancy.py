"""Gradient dormancy and soft resets (ACE reference: ``model/dormant_utils.py``).

* :func:`gradient_dormancy`: over the ``nn.Linear`` layers of a network, a neuron (one output
  row of a layer) is *gradient-dormant* when the L2 norm of its incoming-weight gradient row is
  below ``threshold`` x the layer's mean row norm. The ratio pools all layers' neurons.
* :func:`soft_reset_`: ``theta <- factor * theta + (1 - factor) * phi`` with ``phi`` a fresh
  initialisation of the same network (shrink-and-perturb), either for every neuron or only for
  the rows given by a mask (the "dormant" variants).
* :func:`perturb_factor` and :func:`causal_perturb_factor`: the reference's reset strengths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def linear_layers(*nets: torch.nn.Module) -> list[torch.nn.Linear]:
    """Every ``nn.Linear`` in ``nets``, in module order."""
    return [m for net in nets for m in net.modules() if isinstance(m, torch.nn.Linear)]


@torch.no_grad()
def gradient_dormancy(
    layers: Sequence[torch.nn.Linear], threshold: float
) -> tuple[float, list[torch.Tensor]]:
    """(pooled dormant fraction, one boolean row mask per layer) from the current ``.grad``.

    A layer without a gradient counts as entirely dormant (nothing reaches it).
    """
    masks = []
    for layer in layers:
        grad = layer.weight.grad
        if grad is None:
            masks.append(torch.ones(layer.out_features, dtype=torch.bool, device="cpu"))
            continue
        norms = grad.norm(dim=1)
        masks.append((norms < threshold * norms.mean()).cpu())
    total = sum(len(m) for m in masks)
    ratio = float(sum(int(m.sum()) for m in masks)) / total if total else 0.0
    return ratio, masks


@torch.no_grad()
def soft_reset_(
    net: torch.nn.Module,
    fresh: torch.nn.Module,
    factor: float,
    masks: Sequence[torch.Tensor] | None = None,
) -> None:
    """In place: mixes ``net``'s Linear layers with ``fresh``'s (same architecture).

    Args:
        net: Network to reset.
        fresh: Freshly initialised copy (only read).
        factor: Weight kept from ``net`` (1 = no change, 0 = hard reset).
        masks: Optional per-Linear-layer boolean masks over output rows: only these rows
            (weights and biases) are mixed. None mixes every parameter of every layer.
    """
    layers, fresh_layers = linear_layers(net), linear_layers(fresh)
    if len(layers) != len(fresh_layers) or (masks is not None and len(masks) != len(layers)):
        raise ValueError("net, fresh and masks must describe the same Linear layers.")
    for i, (layer, new) in enumerate(zip(layers, fresh_layers, strict=True)):
        rows = None if masks is None else masks[i].to(layer.weight.device)
        for p, q in ((layer.weight, new.weight), (layer.bias, new.bias)):
            if p is None:
                continue
            mixed = factor * p + (1.0 - factor) * q
            if rows is None:
                p.copy_(mixed)
            else:
                p[rows] = mixed[rows]


def perturb_factor(dormancy_ratio: float, low: float = 0.2, high: float = 0.9) -> float:
    """The reference's ``clip(1 - ratio, low, high)``: more dormancy, stronger reset."""
    return float(np.clip(1.0 - dormancy_ratio, low, high))


def causal_perturb_factor(weights: Sequence[float], low: float = 0.2, high: float = 0.9) -> float:
    """The causal variants' factor: ``clip(1 - (exp(-8 * diff) - 0.5), low, high)`` with
    ``diff = max(w) - min(w)`` (uniform weights -> 0.5; a larger causal spread, a milder reset).
    """
    diff = float(np.max(weights) - np.min(weights))
    return perturb_factor(math.exp(-8.0 * diff) - 0.5, low, high)
