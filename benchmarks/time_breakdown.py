"""Where one env step's time goes, from a profiler run: MP-DQN on Platform at the reference's
setting (``rollout_fragment_length=1``, one env, one gradient step per env step) and ACE on
Pendulum at one gradient step per env step.

Both run with ``num_env_runners=0`` and ``num_learners=0``: the env runner and the learner live
in this process, so one ``cProfile`` run (timer: this process's CPU time, so that other jobs on
the machine do not inflate it) sees every part. Parts are the cumulative time of entry points
unique to each (the env runner's vector-env step, its connector pipelines and module forward;
the replay's add and sample; the learner group's update, with the backward passes and
optimizer steps inside; the weight sync), per env step, and what is left of
``Algorithm.train``. Run:
    .venv/bin/python benchmarks/time_breakdown.py [--algos pdqn ace] [--steps 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

#: (label, indent, [(file substring, function name[, caller file substring, caller name])]).
#: A row's time is the cumulative time of its entry points (from the given caller only, when
#: one is named). Indented rows are parts of the row above them; the last row is spread over
#: the others (the env runner's and the algorithm's metrics).
PARTS = [
    ("Algorithm.train (whole iteration)", 0, [("ray/tune/trainable/trainable.py", "train")]),
    ("training_step", 1, [("rllib_ext/", "training_step")]),
    # Remote env runners: sample_env_runners; in process: the local runner's sample() (the
    # non-finite guard's runner, rllib_ext.core.non_finite.GuardedEnvRunner).
    ("sampling (env runner)", 2, [("rllib_ext/core/env_runner_faults.py",
                                   "sample_env_runners"),
                                  ("rllib_ext/core/non_finite.py", "sample",
                                   "rllib_ext/core/replay_training.py", "learn_cycles")]),
    ("env step (Platform/Pendulum, wrappers, vector env)", 3,
     [("rllib/env/env_runner.py", "_try_env_step")]),
    ("connector pipelines (env-to-module, module-to-env)", 3,
     [("rllib/connectors/connector_pipeline_v2.py", "__call__",
       "rllib/env/single_agent_env_runner.py", "_sample")]),
    ("module forward (exploration)", 3, [("rllib/core/rl_module/torch/torch_rl_module.py",
                                          "forward_exploration")]),
    ("env runner metrics (get_metrics)", 2, [("rllib/env/single_agent_env_runner.py",
                                              "get_metrics")]),
    ("replay add", 2, [("rllib_ext/", "store_episodes")]),
    ("replay sample", 2, [("rllib_ext/core/module_replays.py", "sample_modules"),
                          ("rllib_ext/core/replay.py", "sample_indices"),
                          ("rllib_ext/core/replay.py", "gather")]),
    ("learner update (LearnerGroup.update)", 2, [("rllib/core/learner/learner_group.py",
                                                  "update")]),
    ("the algorithm's maths (_uncompiled_update)", 3, [("rllib_ext/", "_uncompiled_update")]),
    ("backward passes", 4, [("torch/autograd/graph.py", "_engine_run_backward")]),
    ("optimizer steps", 4, [("torch/optim/adam.py", "step")]),
    ("weight sync to the env runner", 2, [("rllib_ext/core/replay_training.py",
                                           "sync_runner_weights")]),
    ("of which ray.put of the weights", 3, [("ray/_private/worker.py", "put_object")]),
    ("MetricsLogger.reduce, all callers (inside the rows above)", 1,
     [("rllib/utils/metrics/metrics_logger.py", "reduce")]),
]


DUMP = False


def _cumulative(stats: pstats.Stats, entries) -> float:
    total = 0.0
    for entry in entries:
        file_part, name = entry[0], entry[1]
        for (filename, _, func), (_, _, _, ct, callers) in stats.stats.items():
            if func != name or file_part not in filename:
                continue
            if len(entry) == 2:
                total += ct
            else:
                total += sum(c[3] for (cf, _, cn), c in callers.items()
                             if cn == entry[3] and entry[2] in cf)
    return total


def build(algo: str):
    from rllib_ext import ACEConfig, PDQNConfig

    if algo == "pdqn":
        # configs/pdqn/platform_reference.yaml's setting: one env, fragment 1.
        return (PDQNConfig()
                .environment("rllib_ext/Platform-v0", env_config={"scale": True})
                .env_runners(num_env_runners=0, rollout_fragment_length=1,
                             num_envs_per_env_runner=1)
                .training(initial_params=[-0.8, -0.97222, 0.86047])
                .reporting(min_sample_timesteps_per_iteration=250, min_time_s_per_iteration=0)
                .debugging(seed=1, log_level="ERROR")), 500
    return (ACEConfig()
            .environment("Pendulum-v1")
            .env_runners(num_env_runners=0, rollout_fragment_length=1)
            .training(num_steps_sampled_before_learning_starts=500, causal_sample_size=400,
                      causal_async=False, reset_interval=0)
            .rl_module(model_config={"fcnet_hiddens": [256, 256]})
            .reporting(min_sample_timesteps_per_iteration=250, min_time_s_per_iteration=0)
            .debugging(seed=1, log_level="ERROR")), 500


def env_steps(result) -> int:
    return result["env_runners"]["num_env_steps_sampled_lifetime"]


def run(algo_name: str, steps: int) -> None:
    config, warmup = build(algo_name)
    algo = config.build_algo()
    try:
        result = algo.train()
        while env_steps(result) < warmup + 250:  # learning has started
            result = algo.train()
        # Unprofiled speed first, then the profiled run over the same number of steps.
        start_steps, t0 = env_steps(result), time.perf_counter()
        while env_steps(result) - start_steps < steps:
            result = algo.train()
        plain_rate = (env_steps(result) - start_steps) / (time.perf_counter() - t0)
        profiler = cProfile.Profile()
        start_steps, c0 = env_steps(result), time.perf_counter()
        profiler.enable()
        while env_steps(result) - start_steps < steps:
            result = algo.train()
        profiler.disable()
        profiled = env_steps(result) - start_steps
        wall = time.perf_counter() - c0
    finally:
        algo.stop()
    stats = pstats.Stats(profiler)
    print(f"\n== {algo_name}: {profiled} env steps profiled; unprofiled {plain_rate:.1f} env "
          f"steps/s; profiled {1e3 * wall / profiled:.2f} ms per env step")
    if __debug__ and DUMP:
        stats.sort_stats("cumulative").print_stats(60)
    print(f"{'part':56s} {'ms/env step':>12s} {'share':>7s}")
    whole = _cumulative(stats, PARTS[0][2])
    for label, indent, entries in PARTS:
        t = _cumulative(stats, entries)
        print(f"{'  ' * indent + label:56s} {1e3 * t / profiled:12.3f} {t / whole:7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["pdqn", "ace"], choices=["pdqn", "ace"])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    import torch

    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    torch.set_num_threads(1)
    init_local_ray(num_cpus=2, include_dashboard=False)
    try:
        for name in args.algos:
            run(name, args.steps)
    finally:
        shutdown_local_ray()


if __name__ == "__main__":
    main()
