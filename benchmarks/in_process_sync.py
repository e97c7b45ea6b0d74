"""Two per-env-step costs of the in-process setting (``num_env_runners=0``, ``num_learners=0``),
each against the code path it replaced, measured alternately in one process (medians over
rounds): the weight sync after an update (the runner's module on the learner's own tensors vs
a copy of the learner's state into it, as before), and one exploration forward of the env
runner's module (left in eval mode vs RLlib's eval/train switch around every call).

MP-DQN on Platform at ``benchmarks/pdqn_platform.py``'s config, torch threads 1. Run:
    .venv/bin/python benchmarks/in_process_sync.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def per_call(fn, calls: int) -> float:
    """Mean CPU time of ``fn()`` in microseconds over ``calls`` calls."""
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)

    from pdqn_platform import make_config
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    algo = make_config(1, 1).build_algo()
    try:
        algo.train()
        policies = ["default_policy"]
        runner = algo.env_runner_group.local_env_runner
        module = runner.module
        obs = {Columns.OBS: torch.as_tensor(
            runner.env.observation_space.sample()[:1])}

        def sync_shared():  # the algorithm's own sync (the runner holds the learner's tensors)
            algo.sync_runner_weights(policies)

        def sync_copied():
            # The copy path: what sync_runner_weights does where the module cannot share.
            state = algo.learner_group.get_state(
                components=["learner/rl_module/default_policy"],
                inference_only=True)["learner"]
            runner.set_state({k: v for k, v in state.items()
                              if k in ("rl_module", "weights_seq_no")})

        def forward_eval_mode():
            module.forward_exploration(obs)

        def forward_switching():
            module.train()  # as RLlib leaves an env runner's module between calls
            TorchRLModule.forward_exploration(module, obs)

        rows = {"weight sync": (sync_copied, sync_shared),
                "exploration forward": (forward_switching, forward_eval_mode)}
        results = {name: ([], []) for name in rows}
        for _ in range(args.rounds):
            for name, (before, after) in rows.items():
                results[name][0].append(per_call(before, args.calls))
                results[name][1].append(per_call(after, args.calls))
                module.eval()
    finally:
        algo.stop()
        shutdown_local_ray()
    print(f"MP-DQN on Platform, in process; CPU us per call, median of {args.rounds} rounds of "
          f"{args.calls} calls")
    print(f"{'':<22} {'before':>9} {'after':>9} {'saved':>9}")
    for name, (before, after) in results.items():
        b, a = statistics.median(before), statistics.median(after)
        print(f"{name:<22} {b:>9.1f} {a:>9.1f} {b - a:>9.1f}")


if __name__ == "__main__":
    main()
