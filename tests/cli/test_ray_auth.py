"""Who may use the Ray that the CLI runs on.

- The embedded instance that ``rllib-ext train`` starts refuses clients without its token (a
  separate process with none, and one with a wrong token): no task of theirs runs, while a
  client with the token (read from the instance's own process, as only the same user can) may.
  The token is in no file under Ray's temp dir, and nothing is written to ``~/.ray``.
- On a cluster started with ``RAY_AUTH_MODE=token``, the CLI trains when given the token
  (``RAY_AUTH_TOKEN_PATH``, the cluster from ``RAY_ADDRESS``) and stops with one line naming
  both variables, within seconds, when the token is missing or wrong.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.tiny_configs import GOOD_EXPERIMENT as GOOD

from ..helpers.ray_processes import clean_env, ray_head, stop_process_group

CLI = [sys.executable, "-m", "rllib_ext.cli.main", "train"]
TINY = GOOD.replace("num_env_steps_sampled_lifetime: 400", "num_env_steps_sampled_lifetime: 200")
#: Trains until the test stops it.
ENDLESS = GOOD.replace("num_env_steps_sampled_lifetime: 400",
                       "num_env_steps_sampled_lifetime: 100000000")
EMBEDDED = re.compile(r"on an embedded local Ray \(a new instance at (\S+), token-protected\)")

#: A client of the Ray at argv[1]: prints "refused" and the exception chain (types and
#: messages) when it cannot connect, else runs a task that writes argv[2] and prints "ran".
CLIENT = textwrap.dedent(
    """
    import pathlib, sys
    import ray
    try:
        ray.init(address=sys.argv[1])
    except Exception as e:
        chain = []
        while e is not None:
            chain.append(f"{type(e).__name__}: {e}")
            e = e.__cause__ or e.__context__
        print("refused", *chain)
        raise SystemExit(0)
    mark = sys.argv[2]
    ray.get(ray.remote(lambda: pathlib.Path(mark).write_text("ran")).remote())
    print("ran")
    """
)
#: A refused client retries for about 20 s by default; one try is enough to see the refusal.
ONE_TRY = {"RAY_gcs_server_port_wait_time_s": "1"}


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for(lines: queue.Queue, pattern: re.Pattern, seen: list, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        match = pattern.search(line)
        if match:
            return match
    pytest.fail("the CLI did not report its embedded Ray:\n" + "".join(seen)[-3000:])


def _token_of_ray_processes(ray_tmp: str) -> str:
    """RAY_AUTH_TOKEN from the environment of the GCS server whose RAY_TMPDIR is ``ray_tmp``
    (readable by the same user only, as any process's environment)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "gcs_server":
                continue
            env = dict(item.split("=", 1) for item in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        except OSError:
            continue
        if env.get("RAY_TMPDIR") == ray_tmp:
            return env["RAY_AUTH_TOKEN"]
    pytest.fail(f"no gcs_server with RAY_TMPDIR={ray_tmp}")


def _client(address: str, mark: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLIENT, address, str(mark)],
                            env=clean_env(**ONE_TRY, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_embedded_ray_refuses_clients_without_its_token(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    ray_tmp = tempfile.mkdtemp(prefix="ra", dir="/tmp")  # short: socket paths <= 107 chars
    config = tmp_path / "exp.yaml"
    config.write_text(ENDLESS)
    # The user's environment says "no auth": the embedded instance is protected all the same.
    env = clean_env(HOME=str(home), RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled")
    cli = subprocess.Popen([*CLI, str(config), "--storage", str(tmp_path / "runs")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(cli.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        address = _wait_for(lines, EMBEDDED, seen, timeout=180).group(1)
        token = _token_of_ray_processes(ray_tmp)
        assert re.fullmatch(r"[0-9a-f]{64}", token)
        marks = {name: tmp_path / f"{name}.txt" for name in ("none", "wrong", "right")}
        clients = {
            "none": _client(address, marks["none"]),
            "wrong": _client(address, marks["wrong"], RAY_AUTH_MODE="token",
                             RAY_AUTH_TOKEN=secrets.token_hex(32)),
            "right": _client(address, marks["right"], RAY_AUTH_MODE="token",
                             RAY_AUTH_TOKEN=token),
        }
        out = {name: c.communicate(timeout=180) for name, c in clients.items()}
        for name in ("none", "wrong"):
            stdout, stderr = out[name]
            assert stdout.startswith("refused"), stdout + stderr[-2000:]
            # Refused for the token (not, say, a connection problem).
            assert "InvalidAuthToken" in stdout, stdout
            assert not marks[name].exists()
        # The control: the same client with the token gets in and runs its task.
        assert out["right"][0].split() == ["ran"], out["right"][1][-2000:]
        assert marks["right"].read_text() == "ran"
        # Still training: the refused clients did not disturb it.
        assert cli.poll() is None, "".join(seen)[-3000:]
    finally:
        stop_process_group(cli)
    try:
        assert not (home / ".ray").exists()
        holding = [str(p) for p in Path(ray_tmp).rglob("*")
                   if p.is_file() and not p.is_socket() and token.encode() in p.read_bytes()]
        assert not holding, f"the token is in {holding}"
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def token_cluster():
    """A `ray start --head` cluster (2 CPUs) that requires a token. Yields (its address, an
    environment without the token, the token)."""
    token = secrets.token_hex(32)
    with ray_head(num_cpus=2, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token) as (address, env):
        yield address, env, token


def test_train_on_a_token_cluster_with_the_token_from_a_file(token_cluster, tmp_path):
    address, env, token = token_cluster
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "exp.yaml"
    config.write_text(TINY)
    # No RAY_AUTH_MODE: a token given is a token used.
    proc = subprocess.run(
        [*CLI, str(config), "--storage", str(tmp_path / "runs")],
        env={**env, "RAY_ADDRESS": address, "RAY_AUTH_TOKEN_PATH": str(token_file)},
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"on the Ray cluster at {address}" in proc.stdout


@pytest.mark.parametrize("given, sent", [
    ({}, "this client, which has no token"),
    ({"RAY_AUTH_TOKEN": "0" * 64}, "the token in RAY_AUTH_TOKEN"),
])
def test_a_missing_or_wrong_cluster_token_is_one_line_and_exit_1(token_cluster, tmp_path,
                                                                  given, sent):
    address, env, _ = token_cluster
    config = tmp_path / "exp.yaml"
    config.write_text(TINY)
    start = time.monotonic()
    proc = subprocess.run(
        [*CLI, str(config), "--address", address, "--storage", str(tmp_path / "runs")],
        env={**env, **given}, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == (
        f"rllib-ext train: error: the Ray cluster at {address} requires a token and refused "
        f"{sent}. Set RAY_AUTH_TOKEN to the cluster's token, or RAY_AUTH_TOKEN_PATH to a file "
        "holding it (`ray get-auth-token` on the head node prints it).")
    # Not Ray's 20 s of retries: the refusal is reported as soon as the GCS answers.
    assert took < 60, took
