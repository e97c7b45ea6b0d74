"""ACE vs RLlib's SAC throughput, side by side in one run, and the cost of one causal fit.

Both algorithms get the same env (``rllib_ext/CausalReach-v0``: 6-d observations and actions,
13 causal variables), the same networks, batch and replay, 0 remote env runners and SAC's
default replay ratio (one update per env step). ACE runs with its causal actor on
(``causal_async=True``), fitting every ``--causal-interval`` env steps on the last
``--causal-sample-size`` transitions, and with soft resets every ``--reset-interval`` updates,
so the measured window includes fits and resets. Rounds alternate SAC / ACE so that load drift
on a shared machine hits both. Prints env-steps/s and updates/s of each and the ACE/SAC
ratios, after (first) the wall time of ``compute_causal_weights`` at ``--fit-vars`` variables
x ``--fit-samples`` samples (synthetic linear non-Gaussian data; HalfCheetah has 17 + 6 + 1 = 24).

Run:
    .venv/bin/python benchmarks/ace_vs_sac.py [--steps 600] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ENV = "rllib_ext/CausalReach-v0"


def build(name: str, args):
    from ray.rllib.algorithms.sac import SACConfig

    from rllib_ext import ACEConfig

    config = ACEConfig() if name == "ACE" else SACConfig()
    training = dict(
        train_batch_size_per_learner=args.batch,
        num_steps_sampled_before_learning_starts=args.batch,
        actor_lr=3e-4,
        replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 100_000,
                              "alpha": 0.6, "beta": 0.4},
    )
    if name == "ACE":
        training.update(causal_sample_size=args.causal_sample_size,
                        causal_update_interval=args.causal_interval,
                        reset_variant="reset", reset_interval=args.reset_interval)
    return (
        config.environment(ENV)
        .env_runners(num_env_runners=0)
        .training(**training)
        .rl_module(model_config={"fcnet_hiddens": args.hiddens})
        .reporting(min_sample_timesteps_per_iteration=50, min_time_s_per_iteration=0)
        .debugging(seed=0)
        .build_algo()
    )


def env_steps(result) -> int:
    return int(result["env_runners"]["num_env_steps_sampled_lifetime"])


def updates(algo, result) -> int:
    """Gradient updates so far: ACE's learner counter; SAC trains one batch per update."""
    if "ace" in result:
        return int(result["ace"]["num_gradient_updates"])
    trained = result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"]
    return int(trained) // algo.config.train_batch_size_per_learner


def run_for(algo, steps: int, last: dict) -> tuple[float, int, int, dict]:
    """train() until ``steps`` more env steps; (seconds, env steps, updates, last result)."""
    start_steps, start_updates = env_steps(last), updates(algo, last)
    start = time.perf_counter()
    result = last
    while env_steps(result) - start_steps < steps:
        result = algo.train()
    return (time.perf_counter() - start, env_steps(result) - start_steps,
            updates(algo, result) - start_updates, result)


def causal_fit_time(num_vars: int, num_samples: int, seed: int = 0) -> tuple[float, str | None]:
    from rllib_ext.algorithms.ace.causal import fit_causal_weights

    rng = np.random.default_rng(seed)
    num_a = 6
    num_s = num_vars - num_a - 1
    s = rng.uniform(-1, 1, (num_samples, num_s))
    a = rng.uniform(-1, 1, (num_samples, num_a)) + 0.3 * s[:, np.arange(num_a) % num_s]
    r = a @ np.linspace(1.0, 0.0, num_a) + 0.2 * s[:, 0] + rng.uniform(-0.5, 0.5, num_samples)
    fit = fit_causal_weights(s, a, r, random_state=seed)
    return fit.fit_seconds, fit.fallback


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600, help="measured env steps per algorithm")
    p.add_argument("--rounds", type=int, default=2, help="alternating SAC/ACE rounds")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hiddens", type=int, nargs="+", default=[256, 256])
    p.add_argument("--causal-sample-size", type=int, default=500)
    p.add_argument("--causal-interval", type=int, default=200)
    p.add_argument("--reset-interval", type=int, default=250)
    p.add_argument("--fit-vars", type=int, default=24)
    p.add_argument("--fit-samples", type=int, default=10_000)
    args = p.parse_args()

    # The fit first: it is a figure of its own and comes early on a slow (shared) machine.
    seconds, fallback = causal_fit_time(args.fit_vars, args.fit_samples)
    print(f"compute_causal_weights: {args.fit_vars} variables x {args.fit_samples} samples: "
          f"{seconds:.2f} s (fallback: {fallback})", flush=True)

    import ray

    import rllib_ext

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rllib_ext.register()
    algos, last, totals = {}, {}, {}
    try:
        for name in ("SAC", "ACE"):
            algos[name] = build(name, args)
            # Warm-up: past learning start and (ACE) the first causal fit submission.
            result = algos[name].train()
            while env_steps(result) < max(2 * args.batch, args.causal_sample_size):
                result = algos[name].train()
            last[name] = result
            totals[name] = [0.0, 0, 0]
        per_round = args.steps // args.rounds
        for _ in range(args.rounds):
            for name in ("SAC", "ACE"):
                seconds, steps, num_updates, last[name] = run_for(algos[name], per_round,
                                                                  last[name])
                totals[name] = [t + x for t, x in zip(totals[name], (seconds, steps, num_updates),
                                                      strict=True)]
                print(f"round: {name} {steps} env steps, {num_updates} updates in "
                      f"{seconds:.1f} s", flush=True)
        ace = last["ACE"]["ace"]
    finally:
        for algo in algos.values():
            algo.stop()
        ray.shutdown()

    print(f"env {ENV}, batch {args.batch}, hiddens {args.hiddens}, {args.rounds} alternating "
          f"rounds, ~{args.steps} measured env steps each, 0 remote env runners")
    print(f"{'algo':<5} {'seconds':>8} {'env steps':>10} {'updates':>8} {'env-steps/s':>12} "
          f"{'updates/s':>10}")
    rates = {}
    for name, (seconds, steps, num_updates) in totals.items():
        rates[name] = (steps / seconds, num_updates / seconds)
        print(f"{name:<5} {seconds:>8.1f} {steps:>10} {num_updates:>8} {rates[name][0]:>12.2f} "
              f"{rates[name][1]:>10.2f}")
    print(f"ACE/SAC: env-steps/s {rates['ACE'][0] / rates['SAC'][0]:.3f}, "
          f"updates/s {rates['ACE'][1] / rates['SAC'][1]:.3f}")
    print(f"ACE during the run: {ace['causal_fits']} causal fits (last {ace['causal_fit_s']:.2f} s "
          f"in the actor, {ace['causal_fallbacks']} fallbacks), {ace['num_resets']} resets, "
          f"weights {[round(ace[f'causal_weight_{i}'], 3) for i in range(6)]}")


if __name__ == "__main__":
    main()
