"""Ray clusters in processes of their own, and the environment a CLI subprocess runs with."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The variables through which a process gets a Ray token.
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra) -> dict:
    """This process's environment without RAY_ADDRESS and without the test session's Ray token
    (a user's shell has neither), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and k not in AUTH_VARS}
    return {**env, **extra}


@contextlib.contextmanager
def ray_head(*, num_cpus: int = 1, **auth):
    """A `ray start --head` cluster in a private Ray temp dir (RAY_TMPDIR, which also holds the
    current-cluster file a bare ray.init() joins), with ``auth`` (RAY_AUTH_* variables) in its
    environment. Yields (its address, the environment that sees it, without ``auth``); stopped
    by ending its own process group (never `ray stop`)."""
    # Short: Ray's socket paths under the temp dir must stay within 107 characters.
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = clean_env(RAY_TMPDIR=tmp)
    ray_bin = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={free_port()}", f"--num-cpus={num_cpus}",
         "--object-store-memory=100000000", "--include-dashboard=false",
         "--disable-usage-stats", "--block"],
        env={**env, **auth}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    current = Path(tmp, "ray", "ray_current_cluster")
    try:
        deadline = time.monotonic() + 120
        while not (current.exists() and current.read_text().strip()):
            assert proc.poll() is None, "`ray start --head` exited"
            assert time.monotonic() < deadline, "`ray start --head` did not come up"
            time.sleep(0.5)
        yield current.read_text().strip(), env
    finally:
        stop_process_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_process_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to the process group ``proc`` leads, SIGKILL to what is left of it after
    ``grace_s`` (the GCS server of `ray start --block` lingers 30 s after SIGTERM; every process
    of the group is this test's own), then wait for ``proc``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
