"""Private names of Ray that rllib_ext relies on, each behind one function.

Ray is pinned (2.60.0), but its private modules move between versions: every function here
names what it relies on, and ``tests/core/test_rllib_compat.py`` checks each one against the
installed Ray, so an upgrade that breaks an assumption fails a test named after it instead of
a behaviour test far away.
"""

from __future__ import annotations

import contextlib
import os
import sys


def reload_ray_auth_settings() -> None:
    """Makes this process follow the current ``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN`` /
    ``RAY_AUTH_TOKEN_PATH`` environment.

    Ray reads ``RAY_AUTH_MODE`` into its process-wide ``RayConfig`` when ``ray`` is imported,
    and its C++ ``AuthenticationTokenLoader`` caches the token the first time it is needed;
    child processes (GCS, raylet, workers) read the environment afresh. Ray's own
    ``ray.init`` re-initialises the config the same way when it turns token authentication on
    by default (``authentication_token_setup._enable_token_auth`` in Ray 2.60).
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def token_auth_enabled() -> bool:
    """Whether this process talks to Ray with token authentication (its cached mode)."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    return is_token_auth_enabled()


def check_gcs_accepts_this_process(address: str) -> None:
    """Makes one call to the GCS at ``address`` (``HOST:PORT``) with this process's
    credentials. Raises ``ray.exceptions.AuthenticationError`` at once (about 0.3 s) when the
    GCS refuses them: ``ray.init`` would retry the same refusal for about 20 s first.

    Relies on ``ray._raylet.GcsClient(address=...)``, which fetches the cluster id on
    construction. Its C++ client logs the refusal as one warning line straight to file
    descriptor 2; that line is dropped here (the caller reports the refusal itself).
    """
    from ray._raylet import GcsClient

    with _fd2_to_devnull():
        GcsClient(address=address)


@contextlib.contextmanager
def _fd2_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- torch ---------------------------------------------------------------------------------------


def foreach_norm(tensors: list) -> list:
    """The L2 norm of each tensor, one fused kernel (``torch._foreach_norm``, private but
    stable since torch 1.13): the non-finite gradient check runs it on every gradient step."""
    import torch

    return torch._foreach_norm(tensors)


def foreach_lerp_(targets: list, sources: list, weight: float) -> None:
    """``t += weight * (s - t)`` for every pair, in place, one fused kernel
    (``torch._foreach_lerp_``, private but stable since torch 2.0): Polyak averaging of target
    networks on every policy step."""
    import torch

    torch._foreach_lerp_(targets, sources, weight)
