"""Same trajectory? A few seeded training iterations of every algorithm from the config files,
with a hash of the learner's module weights and the returns, so that two commits (a refactor,
an upgrade) can be compared: equal hashes mean the same weights, bit for bit.

Each algorithm trains ``iterations`` iterations of its config file (seed 7, one torch thread,
evaluation off) on an embedded local Ray. Run it in two checkouts with the same config files
(``--configs``) and compare the JSON files:

    .venv/bin/python benchmarks/same_trajectory.py --out /tmp/a.json [--configs DIR]
    (cd ../other-checkout && python benchmarks/same_trajectory.py --configs ../this/configs \
        --out /tmp/b.json)
    diff /tmp/a.json /tmp/b.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

#: (config file under --configs, training() overrides, iterations).
RUNS = [
    ("pdqn/platform.yaml", {}, 3),
    ("pdqn/platform.yaml", {"variant": "spdqn"}, 2),
    ("paddpg/platform.yaml", {}, 3),
    ("ace/causal_reach.yaml", {}, 3),
    ("pg/cartpole.yaml", {}, 3),
]


def weights_hash(state: dict) -> str:
    """sha256 (16 hex digits) of every array of a nested module state, in key order."""
    digest = hashlib.sha256()

    def walk(value, prefix: str) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                walk(value[key], f"{prefix}/{key}")
        elif hasattr(value, "shape"):
            digest.update(prefix.encode())
            digest.update(np.ascontiguousarray(np.asarray(value, np.float64)).tobytes())

    walk(state, "")
    return digest.hexdigest()[:16]


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=str(root / "configs"), help="config files' folder")
    p.add_argument("--out", required=True, help="JSON file for the hashes and returns")
    args = p.parse_args()

    import torch

    import rllib_ext
    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    torch.set_num_threads(1)
    init_local_ray(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    out = {}
    try:
        for path, training, iterations in RUNS:
            overrides = {"evaluation": {"evaluation_interval": None}}
            if training:
                overrides["training"] = training
            config = load_experiment(Path(args.configs) / path).build_config(
                seed=7, overrides=overrides)
            algo = config.build_algo()
            try:
                returns = [algo.train()["env_runners"].get("episode_return_mean")
                           for _ in range(iterations)]
                state = next(iter(algo.learner_group.foreach_learner(
                    lambda learner: learner.module.get_state())))
                state = state.get() if hasattr(state, "get") else state
            finally:
                algo.stop()
            key = path + (f" {json.dumps(training)}" if training else "")
            out[key] = {"weights": weights_hash(state),
                        "returns": [None if r is None else round(float(r), 6) for r in returns]}
            print(key, out[key], flush=True)
    finally:
        shutdown_local_ray()
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
