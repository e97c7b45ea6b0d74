"""The Ray instances rllib_ext starts or joins, and the token that guards each.

**The embedded instance** (``rllib-ext`` without ``--address``, the tests, the benchmarks):
:func:`init_local_ray` starts a new local instance that requires Ray's token authentication,
with a fresh random token (256 bits) that exists only in the environment of this process and
of the Ray processes it starts. Anyone else who reaches the instance's ports (Ray 2.60 listens
on all interfaces and offers no supported way to bind to loopback) is refused before any code
runs. Nothing is written to ``~/.ray`` (a bare ``ray.init()`` would write a token there), and
the caller's own ``RAY_AUTH_*`` variables come back with :func:`shutdown_local_ray`.

**A cluster** (``--address`` / ``RAY_ADDRESS``): the user's token, from ``RAY_AUTH_TOKEN`` or
``RAY_AUTH_TOKEN_PATH``, is used as given (:func:`use_cluster_token`; Ray alone does not send
it to an explicit address unless ``RAY_AUTH_MODE=token`` is set too), and
:func:`check_cluster_token` turns a refusal into one line naming both variables within a
second, where ``ray.init`` would retry for 20 s and end in a traceback.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rllib_ext.core import rllib_compat

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
#: Bytes of randomness in an embedded instance's token (256 bits, as Ray's own generator).
TOKEN_BYTES = 32
#: Where Ray looks for a token when neither variable is set.
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")

#: The caller's ``RAY_AUTH_*`` values before :func:`init_local_ray` replaced them (None for
#: unset), restored by :func:`shutdown_local_ray`; None while nothing is replaced.
_saved_env: dict[str, str | None] | None = None


class ClusterAuthError(Exception):
    """The cluster refused this process's token, or the token cannot be read (one line)."""


def init_local_ray(**init_kwargs) -> str:
    """Starts a new local Ray instance that only this process and its workers can use, and
    connects to it. ``init_kwargs`` go to ``ray.init`` (``num_cpus``, ``include_dashboard``,
    ``runtime_env``, ...; ``address`` is always ``"local"``: a new instance even when a
    ``ray start`` cluster runs on the machine). Returns the instance's GCS address.

    The token is generated here and given to Ray through this process's environment
    (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``), which the Ray processes inherit; no file
    holds it. Raises ``RuntimeError`` when Ray is already initialised in this process.
    """
    import ray

    if "address" in init_kwargs:
        raise TypeError("init_local_ray() always starts a new local instance; to join a "
                        "cluster call ray.init(address=...) after use_cluster_token().")
    if ray.is_initialized():
        raise RuntimeError("Ray is already initialised in this process; call "
                           "shutdown_local_ray() (or ray.shutdown()) first.")
    _replace_env({MODE_ENV: "token", TOKEN_ENV: secrets.token_hex(TOKEN_BYTES),
                  # RAY_AUTH_TOKEN wins over a file in Ray 2.60; unset the path all the same
                  # so no other token can be picked up.
                  TOKEN_PATH_ENV: None})
    try:
        ray.init(address="local", **init_kwargs)
    except BaseException:
        _restore_env()
        raise
    return ray.get_runtime_context().gcs_address


def shutdown_local_ray() -> None:
    """``ray.shutdown()``, then the ``RAY_AUTH_*`` variables as they were before
    :func:`init_local_ray`."""
    import ray

    ray.shutdown()
    _restore_env()


def use_cluster_token() -> None:
    """Sends the user's cluster token when joining a cluster at an explicit address.

    With ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH`` set and ``RAY_AUTH_MODE`` unset, turns
    token authentication on for this process (Ray itself does so only for ``address="auto"``
    with a token in ``~/.ray``); an explicit ``RAY_AUTH_MODE`` is left as it is. Raises
    :class:`ClusterAuthError` when ``RAY_AUTH_TOKEN_PATH`` names a file that cannot be read or
    is empty (Ray would only log it and then fail to connect).
    """
    path = os.environ.get(TOKEN_PATH_ENV)
    if path and not os.environ.get(TOKEN_ENV):
        try:
            empty = not Path(path).expanduser().read_text().strip()
        except OSError as e:
            raise ClusterAuthError(
                f"{TOKEN_PATH_ENV}={path} cannot be read ({e.strerror or e}). Point it to "
                f"the file that holds the cluster's token, or set {TOKEN_ENV} instead."
            ) from None
        if empty:
            raise ClusterAuthError(f"{TOKEN_PATH_ENV}={path} is empty. Put the cluster's token "
                                   f"in it, or set {TOKEN_ENV} instead.")
    if os.environ.get(MODE_ENV) is None and (os.environ.get(TOKEN_ENV) or path):
        os.environ[MODE_ENV] = "token"
        rllib_compat.reload_ray_auth_settings()


def check_cluster_token(address: str) -> None:
    """Raises :class:`ClusterAuthError` (one line: what was sent, and the fix naming
    ``RAY_AUTH_TOKEN`` and ``RAY_AUTH_TOKEN_PATH``) when the Ray cluster at ``address``
    (``HOST:PORT``) refuses this process's token. Call :func:`use_cluster_token` first."""
    from ray.exceptions import AuthenticationError

    try:
        rllib_compat.check_gcs_accepts_this_process(address)
    except AuthenticationError:
        raise ClusterAuthError(refused_message(address)) from None


def refused_message(address: str) -> str:
    """The one line for a cluster at ``address`` that refused this process's token."""
    return (f"the Ray cluster at {address} requires a token and refused {_token_source()}. "
            f"Set {TOKEN_ENV} to the cluster's token, or {TOKEN_PATH_ENV} to a file holding "
            "it (`ray get-auth-token` on the head node prints it).")


def is_auth_refusal(error: BaseException) -> bool:
    """Whether ``error`` (e.g. the ``ConnectionError`` of ``ray.init``) was caused by Ray's
    token authentication refusing this process."""
    from ray.exceptions import AuthenticationError

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, AuthenticationError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _token_source() -> str:
    """What this process sends, in words."""
    if not rllib_compat.token_auth_enabled():
        mode = os.environ.get(MODE_ENV)
        return (f"this client, which sends no token ({MODE_ENV}={mode})" if mode
                else "this client, which has no token")
    if os.environ.get(TOKEN_ENV):
        return f"the token in {TOKEN_ENV}"
    if os.environ.get(TOKEN_PATH_ENV):
        return f"the token in {TOKEN_PATH_ENV} ({os.environ[TOKEN_PATH_ENV]})"
    if DEFAULT_TOKEN_FILE.expanduser().is_file():
        return f"the token in {DEFAULT_TOKEN_FILE}"
    return "this client, which has no token"


def _replace_env(values: dict[str, str | None]) -> None:
    global _saved_env
    if _saved_env is None:
        _saved_env = {name: os.environ.get(name) for name in values}
    _set_env(values)


def _restore_env() -> None:
    global _saved_env
    if _saved_env is not None:
        _set_env(_saved_env)
        _saved_env = None


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    rllib_compat.reload_ray_auth_settings()
