"""MP-DQN gradient steps on Platform: RLlib's minibatch path vs the chunked path vs plain PyTorch.

One process, the same replay rows, side by side, repeated ``--rounds`` times:

- *minibatches*: ``learner_group.update(K*B rows, minibatch_size=B)`` — RLlib's iterator slices
  the batch and runs its per-minibatch bookkeeping K times;
- *chunked*: ``learner_group.update(K*B rows, minibatch_size=None)`` — what ``PDQN`` does: one
  RLlib minibatch, cut into K consecutive batches inside the learner's ``_update``;
- *plain*: the same losses, clipping, Adam steps and Polyak updates on a copy of the module,
  without RLlib.

Reports the median **CPU time** (``time.process_time``) per gradient step of each and the
ratios: CPU time is what the learner costs this process, and it is less disturbed than wall
time by other work on a shared machine. Run:
    .venv/bin/python benchmarks/pdqn_learner_update.py [--k 8] [--reps 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=8, help="gradient steps per update call")
    p.add_argument("--reps", type=int, default=15, help="update calls per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    args = p.parse_args()
    torch.set_num_threads(1)

    from pdqn_platform import PlainUpdate, make_config
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    algo = make_config(8).build_algo()
    while len(algo.replay) < 1000:
        algo.train()
    cfg, k = algo.config, args.k
    size = cfg.train_batch_size_per_learner
    timesteps = {"num_env_steps_sampled_lifetime": 1000}

    def rllib(minibatch_size):
        data = algo.replay.sample(k * size)
        start = time.process_time()
        algo.learner_group.update(
            batch=MultiAgentBatch({"default_policy": SampleBatch(data)}, env_steps=k * size),
            minibatch_size=minibatch_size, num_epochs=1, shuffle_batch_per_epoch=False,
            timesteps=timesteps,
        )
        return time.process_time() - start

    update = PlainUpdate(
        copy.deepcopy(algo.learner_group._learner.module["default_policy"].unwrapped()), cfg)

    def plain():
        data = algo.replay.sample(k * size)
        start = time.process_time()
        for i in range(k):
            update({key: v[i * size:(i + 1) * size] for key, v in data.items()})
        return time.process_time() - start

    paths = {"RLlib minibatches": lambda: rllib(size), "chunked (PDQN)": lambda: rllib(None),
             "plain PyTorch": plain}
    per_step = {name: [] for name in paths}
    for round_ in range(args.rounds):
        for name, fn in paths.items():
            per_step[name].append(statistics.median(fn() for _ in range(args.reps)) / k * 1e3)
        print(f"round {round_}: " + ", ".join(f"{n} {v[-1]:.2f} ms" for n, v in per_step.items()),
              flush=True)
    algo.stop()
    shutdown_local_ray()

    med = {name: statistics.median(v) for name, v in per_step.items()}
    print(f"\nMP-DQN on Platform, batch {size}, {k} gradient steps per update call, "
          f"CPU ms per gradient step (median of {args.rounds} rounds x {args.reps} calls):")
    for name, value in med.items():
        print(f"  {name:<18} {value:6.2f} ms   x{value / med['plain PyTorch']:.2f} of plain")
    print(f"chunked / minibatches: {med['chunked (PDQN)'] / med['RLlib minibatches']:.3f}")


if __name__ == "__main__":
    main()
