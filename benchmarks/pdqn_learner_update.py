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
import os
import statistics
import time

import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=8, help="gradient steps per update call")
    p.add_argument("--reps", type=int, default=15, help="update calls per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    args = p.parse_args()
    torch.set_num_threads(1)

    import ray
    from pdqn_platform import make_config
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    import rllib_ext
    from rllib_ext.algorithms.parameterised.torch.networks import polyak_update
    from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import compute_pdqn_losses
    from rllib_ext.hooks import ActionGradientHook

    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
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

    module = copy.deepcopy(algo.learner_group._learner.module["default_policy"].unwrapped())
    q_opt = torch.optim.Adam(module.q_net.parameters(), lr=cfg.lr_q)
    param_params = [w for w in module.param_net.parameters() if w.requires_grad]
    p_opt = torch.optim.Adam(param_params, lr=cfg.lr_param)
    hook = ActionGradientHook(cfg.action_gradient_strategy)

    def plain():
        data = algo.replay.sample(k * size)
        start = time.process_time()
        for i in range(k):
            batch = {key: torch.as_tensor(v[i * size:(i + 1) * size]) for key, v in data.items()}
            q_loss, param_loss, _ = compute_pdqn_losses(module, batch, cfg, hook)
            q_opt.zero_grad()
            p_opt.zero_grad()
            (q_loss + param_loss).backward()
            torch.nn.utils.clip_grad_norm_(module.q_net.parameters(), cfg.grad_clip)
            torch.nn.utils.clip_grad_norm_(param_params, cfg.grad_clip)
            q_opt.step()
            p_opt.step()
            polyak_update(module.q_net, module.target_q_net, cfg.tau_q)
            polyak_update(module.param_net, module.target_param_net, cfg.tau_param)
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
    ray.shutdown()

    med = {name: statistics.median(v) for name, v in per_step.items()}
    print(f"\nMP-DQN on Platform, batch {size}, {k} gradient steps per update call, "
          f"CPU ms per gradient step (median of {args.rounds} rounds x {args.reps} calls):")
    for name, value in med.items():
        print(f"  {name:<18} {value:6.2f} ms   x{value / med['plain PyTorch']:.2f} of plain")
    print(f"chunked / minibatches: {med['chunked (PDQN)'] / med['RLlib minibatches']:.3f}")


if __name__ == "__main__":
    main()
