"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from ..helpers.ray_processes import ray_head


@pytest.fixture
def other_cluster():
    """An unauthenticated `ray start --head` cluster (1 CPU): see :func:`ray_head`."""
    with ray_head(RAY_AUTH_MODE="disabled") as (address, env):
        yield address, {**env, "RAY_AUTH_MODE": "disabled"}
