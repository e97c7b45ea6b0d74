"""Where PG's time goes, and what vectorised envs buy: one env per runner vs 8, side by side.

RLlib's env runner spends ~ms per *vector* step in its connector pipelines and module call,
whatever the number of sub-envs, so the step rate grows almost linearly with
``num_envs_per_env_runner`` on cheap envs like CartPole. Prints env steps/s of each setting,
the ratio, and the split of an iteration between sampling and the learner update.

Run: .venv/bin/python benchmarks/pg_sampling.py [--iterations N]
"""

from __future__ import annotations

import argparse
import time


def measure(num_envs: int, iterations: int) -> dict:
    from rllib_ext import PGConfig

    config = (
        PGConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
        .training(train_batch_size_per_learner=2000)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=0, log_level="ERROR")
    )
    algo = config.build_algo()
    try:
        algo.train()  # warm-up (first-call allocations, lazy imports)
        steps0 = algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
        t0 = time.perf_counter()
        for _ in range(iterations):
            r = algo.train()
        wall = time.perf_counter() - t0
        steps = r["num_env_steps_sampled_lifetime"] - steps0
    finally:
        algo.stop()
    # RLlib's timers are moving averages per iteration: compare them with each other.
    timers = r["timers"]
    return {
        "steps_per_s": steps / wall,
        "sample_share": timers["env_runner_sampling_timer"] / timers["training_iteration"],
        "learn_share": timers["learner_update_timer"] / timers["training_iteration"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=5)
    args = p.parse_args()
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    rows = {n: measure(n, args.iterations) for n in (1, 8)}
    shutdown_local_ray()
    print(f"{'envs/runner':>11} {'env steps/s':>12} {'sampling':>9} {'learner':>8}")
    for n, r in rows.items():
        print(f"{n:>11} {r['steps_per_s']:>12,.0f} {r['sample_share']:>8.0%} "
              f"{r['learn_share']:>8.0%}")
    print(f"ratio 8 envs / 1 env: {rows[8]['steps_per_s'] / rows[1]['steps_per_s']:.2f}x")


if __name__ == "__main__":
    main()
