"""Which Ray the CLI uses: its own embedded local instance by default, even with a `ray start`
cluster on the machine that a bare ray.init() would join, and one clear line (exit 1) when
the cluster given with --address is not there."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .test_cli import GOOD

# test_cli's tiny PG file, stopped sooner.
TINY = GOOD.replace("num_env_steps_sampled_lifetime: 400", "num_env_steps_sampled_lifetime: 200")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "RAY_AUTH_MODE": "disabled", **extra}


@pytest.fixture
def other_cluster():
    """A `ray start --head` cluster (1 CPU) in a private Ray temp dir (RAY_TMPDIR), which holds
    the current-cluster file a bare ray.init() joins. Yields (its address, the env that
    sees it); stopped by ending its own process group (never `ray stop`)."""
    # Short: Ray's socket paths under the temp dir must stay within 107 characters.
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = _cli_env(RAY_TMPDIR=tmp)
    ray_bin = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={_free_port()}", "--num-cpus=1",
         "--object-store-memory=100000000", "--include-dashboard=false",
         "--disable-usage-stats", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    current = Path(tmp, "ray", "ray_current_cluster")
    try:
        deadline = time.monotonic() + 120
        while not (current.exists() and current.read_text().strip()):
            assert proc.poll() is None, "`ray start --head` exited"
            assert time.monotonic() < deadline, "`ray start --head` did not come up"
            time.sleep(0.5)
        yield current.read_text().strip(), env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # --block: takes its Ray processes down with it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def test_train_starts_its_own_ray_beside_a_running_cluster(other_cluster, tmp_path):
    address, env = other_cluster
    # The premise: a bare ray.init() with this environment joins that cluster.
    joined = subprocess.run(
        [sys.executable, "-c",
         "import ray; ray.init(); print(ray.get_runtime_context().gcs_address)"],
        env=env, capture_output=True, text=True, timeout=120)
    assert joined.stdout.strip().splitlines()[-1] == address, joined.stderr

    config = tmp_path / "exp.yaml"
    config.write_text(TINY)
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_ext.cli.main", "train", str(config),
         "--storage", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"on an embedded local Ray \(a new instance at (\S+)\)$", proc.stdout,
                      re.MULTILINE)
    assert match, proc.stdout
    assert match.group(1) != address


def test_unreachable_address_is_one_line_and_exit_1(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(TINY)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_ext.cli.main", "train", str(config),
         "--address", f"127.0.0.1:{_free_port()}", "--storage", str(tmp_path / "runs")],
        env=_cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - start < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("rllib-ext train: error: no Ray cluster at 127.0.0.1:")
    assert "--address" in lines[0]
