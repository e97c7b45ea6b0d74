"""CPU time per env step of MP-DQN on Platform (``pdqn_platform.py``'s config, one update per
env step), after learning started: a load-robust figure for comparing two checkouts of the
project on a busy machine (wall time moves with the other jobs; this process's CPU time much
less). The env runner and the learner run in this process, so its CPU time is theirs.

Alternate the checkouts, several rounds, and compare the medians:

    for round in 1 2 3; do for tree in ../before .; do
        PYTHONPATH=$tree .venv/bin/python benchmarks/cpu_per_step.py; done; done
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fragment", type=int, default=1, help="rollout_fragment_length (1)")
    p.add_argument("--envs", type=int, default=1, help="num_envs_per_env_runner (1)")
    p.add_argument("--steps", type=int, default=1500, help="env steps measured (1500)")
    args = p.parse_args()
    torch.set_num_threads(1)

    from pdqn_platform import make_config

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    algo = make_config(args.fragment, args.envs).build_algo()
    try:
        # Learning starts at 500 stored transitions: measure after it did.
        while algo.train()["num_env_steps_sampled_lifetime"] < 750:
            pass
        start_steps = algo.train()["num_env_steps_sampled_lifetime"]
        cpu, wall = time.process_time(), time.perf_counter()
        while (steps := algo.train()["num_env_steps_sampled_lifetime"]) < start_steps + args.steps:
            pass
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        algo.stop()
        shutdown_local_ray()
    n = steps - start_steps
    print(f"{rllib_ext.__file__}: fragment {args.fragment}, envs {args.envs}: "
          f"CPU {cpu / n * 1e3:.2f} ms per env step, wall {wall / n * 1e3:.2f} ms ({n} steps)")


if __name__ == "__main__":
    main()
