"""Helpers for the environment tests."""

from __future__ import annotations

import numpy as np
import pytest


class NoNoise:
    """Stands in for ``env.np_random`` to make the dynamics deterministic and hand-derivable:
    every Gaussian draw is 0 and every uniform draw is the midpoint (0 noise)."""

    def standard_normal(self, size=None):
        return np.zeros(size) if size is not None else 0.0

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.full(size, loc) if size is not None else loc

    def random(self, size=None):
        return np.full(size, 0.5) if size is not None else 0.5

    def uniform(self, low=0.0, high=1.0, size=None):
        mid = (low + high) / 2
        return np.full(size, mid) if size is not None else mid


@pytest.fixture
def no_noise():
    return NoNoise()
