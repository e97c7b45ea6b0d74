"""Network builders shared by the parameterised-action modules (the reference's initialisation)."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "tanh": nn.Tanh}


def hidden_layers(in_dim: int, hiddens, activation: str) -> nn.Sequential:
    """Linear + activation layers with Kaiming-normal weights and zero biases (the reference's
    "kaiming" init)."""
    layers, last = [], in_dim
    for width in hiddens:
        linear = nn.Linear(last, width)
        nn.init.kaiming_normal_(
            linear.weight, nonlinearity="leaky_relu" if activation == "leaky_relu" else "relu"
        )
        nn.init.zeros_(linear.bias)
        layers += [linear, ACTIVATIONS[activation]()]
        last = width
    return nn.Sequential(*layers)


def output_layer(in_dim: int, out_dim: int, std: float | None, *, zero_default=False) -> nn.Linear:
    """Output layer with N(0, std) weights (PyTorch's default init if ``std`` is None, or zeros
    with ``zero_default``) and a zero bias."""
    out = nn.Linear(in_dim, out_dim)
    if std is not None:
        nn.init.normal_(out.weight, std=std)
    elif zero_default:
        nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return out


def mlp(in_dim: int, hiddens, out_dim: int, activation: str, out_std: float | None,
        *, zero_default=False) -> nn.Sequential:
    """``hidden_layers`` followed by ``output_layer``."""
    body = hidden_layers(in_dim, hiddens, activation)
    last = hiddens[-1] if len(hiddens) else in_dim
    return nn.Sequential(*body, output_layer(last, out_dim, out_std, zero_default=zero_default))


def make_passthrough(obs_dim: int, total_params: int, initial_params,
                     initial_weights=None) -> nn.Linear:
    """The reference's frozen "passthrough" layer: bias = the user-given initial action
    parameters, weights = an optional hand-made linear policy (both zeros if None), never
    trained. Added to the parameter head's output, it makes the initial policy propose
    ``initial_params + initial_weights @ obs``."""
    layer = nn.Linear(obs_dim, total_params)
    nn.init.zeros_(layer.weight)
    with torch.no_grad():
        if initial_weights is not None:
            layer.weight.copy_(torch.as_tensor(initial_weights, dtype=torch.float32,
                                               device=layer.weight.device))
        if initial_params is not None:
            layer.bias.copy_(torch.as_tensor(initial_params, dtype=torch.float32,
                                             device=layer.bias.device))
        else:
            layer.bias.zero_()
    return layer.requires_grad_(False)
