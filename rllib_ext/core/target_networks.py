"""Target networks: the Polyak (soft) update every off-policy learner here uses."""

from __future__ import annotations

import torch
from torch import nn

from rllib_ext.core.rllib_compat import foreach_lerp_


@torch.no_grad()
def polyak_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """theta' <- tau * theta + (1 - tau) * theta' over all tensors in one fused op."""
    foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)
