"""Which Ray the CLI uses: its own embedded local instance by default, even with a `ray start`
cluster on the machine that a bare ray.init() would join, and one clear line (exit 1) when
the cluster given with --address is not there."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from tests.helpers.tiny_configs import GOOD_EXPERIMENT as GOOD

from ..helpers.ray_processes import clean_env, free_port

# test_cli's tiny PG file, stopped sooner.
TINY = GOOD.replace("num_env_steps_sampled_lifetime: 400", "num_env_steps_sampled_lifetime: 200")


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
    match = re.search(r"on an embedded local Ray \(a new instance at (\S+), token-protected\)$",
                      proc.stdout, re.MULTILINE)
    assert match, proc.stdout
    assert match.group(1) != address


def test_unreachable_address_is_one_line_and_exit_1(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(TINY)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_ext.cli.main", "train", str(config),
         "--address", f"127.0.0.1:{free_port()}", "--storage", str(tmp_path / "runs")],
        env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - start < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("rllib-ext train: error: no Ray cluster at 127.0.0.1:")
    assert "--address" in lines[0]
