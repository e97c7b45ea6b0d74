"""Network builders shared by the parameterised-action modules (the reference's initialisation)
and the observation encoder RLlib's catalog builds for image observations."""

from __future__ import annotations

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.models.catalog import Catalog
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


class ObservationEncoder(nn.Module):
    """Observation -> the flat features a network reads.

    - 1-D Box: the identity. The reference's networks read the observation itself; the encoder
      holds no weights and draws no random numbers, so networks built with it are exactly the
      networks built without it (same weights at the same seed).
    - 3-D Box (an ``(H, W, C)`` image, float): the CNN RLlib's :class:`Catalog` builds from the
      RL module's ``model_config`` (``conv_filters``, RLlib's default stack for the image size
      when unset; ``conv_activation``; ``conv_kernel_initializer`` ...), flattened, as RLlib's
      built-in modules encode images. Inputs may arrive flat (the replay stores rows); they are
      reshaped to the image first.

    Attributes:
        out_dim: Width of the features.
    """

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.Space,
                 model_config: dict):
        super().__init__()
        shape = tuple(observation_space.shape)
        self.image_shape: tuple[int, ...] | None = None
        if len(shape) == 1:
            self.cnn = None
            self.out_dim = int(shape[0])
            return
        catalog = Catalog(observation_space, action_space, dict(model_config))
        self.cnn = catalog.build_encoder(framework="torch")
        self.image_shape = shape
        self.out_dim = int(catalog.latent_dims[0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.cnn is None:
            return obs
        images = obs.reshape(obs.shape[0], *self.image_shape)
        return self.cnn({Columns.OBS: images})[ENCODER_OUT]
