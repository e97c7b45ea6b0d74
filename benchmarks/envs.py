"""Step speed of the Platform and Goal ports under a uniform-random policy.

Prints macro-steps/s (env.step calls) and frames/s (simulated physics frames) for each env,
measured in one run on the raw env (no wrappers, no rendering). Run:
    .venv/bin/python benchmarks/envs.py [--seconds S]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def measure(env, seconds: float, seed: int = 0) -> tuple[float, float, int]:
    rng = np.random.default_rng(seed)
    space = env.action_space
    num_actions = space.spaces[0].n
    boxes = space.spaces[1].spaces
    # Pre-sample actions so the policy costs nothing inside the timed loop.
    actions = [
        (int(rng.integers(num_actions)),
         tuple(rng.uniform(b.low, b.high).astype(np.float32) for b in boxes))
        for _ in range(10_000)
    ]
    env.reset(seed=seed)
    steps = frames = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, info = env.step(actions[steps % len(actions)])
        steps += 1
        frames += info["frames"]
        if terminated or truncated:
            episodes += 1
            env.reset()
    elapsed = time.perf_counter() - start
    return steps / elapsed, frames / elapsed, episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="time per env (default 5)")
    args = p.parse_args()
    from rllib_ext.envs import GoalEnv, PlatformEnv

    print(f"{'env':<10} {'macro-steps/s':>14} {'frames/s':>10} {'frames/step':>12} {'episodes':>9}")
    for name, env in (("Platform", PlatformEnv()), ("Goal", GoalEnv())):
        steps_s, frames_s, episodes = measure(env, args.seconds)
        print(f"{name:<10} {steps_s:>14,.0f} {frames_s:>10,.0f} {frames_s / steps_s:>12.1f} "
              f"{episodes:>9,}")


if __name__ == "__main__":
    main()
