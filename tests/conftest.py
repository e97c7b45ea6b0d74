"""Shared fixtures: one Ray session for the whole test run (start-up costs ~8 s and ~0.8 GB)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    import ray

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    # A private, token-protected instance, even next to a running `ray start` cluster.
    init_local_ray(num_cpus=2, include_dashboard=False)
    # The cluster's registry starts empty: register trainables and envs in it.
    rllib_ext.register()
    yield ray
    shutdown_local_ray()


def pytest_collection_modifyitems(config, items):
    """Modules marked ``replaces_ray_session`` (the multi-node tests: they swap the session's
    Ray for a cluster of their own) run after all others, whatever the order of the paths."""
    last = [item for item in items if item.get_closest_marker("replaces_ray_session")]
    if last:
        items[:] = [item for item in items if item not in last] + last
