"""MP-DQN on Platform: RLlib's ``PDQN`` vs a plain PyTorch loop over the *same* module, losses,
replay and exploration, at the reference setting (one update per env step), side by side.

Prints env steps/s and updates/s of both and their ratio; this process's CPU time per env step
and the ratio of those (every run is in this process: the plain loop, and RLlib's env runner
and learner with ``num_env_runners=0``, ``num_learners=0``), which other jobs on the machine
move much less than wall time; where RLlib's time goes (its own per-iteration timers); and the
greedy return each reached. The CPU times include the start of learning (the first 500 steps
take no updates), the same for every run. Run:
    .venv/bin/python benchmarks/pdqn_platform.py [--steps 3000] [--eval-episodes 100] \
        [--threads N] [--fragments 1 8] [--envs 1 8]

``--threads`` sets torch's intra-op threads for all runs (they share this process: the local
env runner and the local learner run here). With a 128-unit network and batch 128, thread
hand-offs cost more than they save, most of all on a busy machine. ``--envs`` sets
``num_envs_per_env_runner`` (one gymnasium vector env of N Platforms): the env runner's per-step
connector and module work is then shared by N env steps; the replay ratio stays one update per
env step. Every (fragment, envs) pair is one RLlib run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

PLATFORM = "rllib_ext/Platform-v0"
INITIAL_PARAMS = [-0.8, -0.97222, 0.86047]


def make_config(rollout_fragment_length: int, num_envs: int = 1):
    from rllib_ext import PDQNConfig

    return (
        PDQNConfig()
        .environment(PLATFORM, env_config={"scale": True})
        .env_runners(num_env_runners=0, rollout_fragment_length=rollout_fragment_length,
                     num_envs_per_env_runner=num_envs)
        .training(initial_params=INITIAL_PARAMS)
        .reporting(min_sample_timesteps_per_iteration=250, min_time_s_per_iteration=0)
        .debugging(seed=1, log_level="ERROR")
    )


def greedy_return(module, episodes: int, seed: int = 100) -> float:
    """Mean greedy return of ``module`` on Platform over ``episodes`` (env seeds from ``seed``)."""
    from platform_seed_study import greedy_return as greedy_return_on

    from rllib_ext.envs import make

    return greedy_return_on(module, make(PLATFORM, scale=True), episodes, seed)


class PlainUpdate:
    """One gradient step of the reference on ``module``, without RLlib, in its order: the Q
    loss, its backward, norm clip and Adam step; then the parameter loss on the *updated*
    Q-network, its backward, clip and step; then both Polyak updates."""

    def __init__(self, module, cfg):
        from rllib_ext.hooks import ActionGradientHook

        self.module, self.cfg = module, cfg
        self.q_opt = torch.optim.Adam(module.q_net.parameters(), lr=cfg.lr_q,
                                      betas=tuple(cfg.adam_betas))
        self.param_params = [p for p in module.param_net.parameters() if p.requires_grad]
        self.p_opt = torch.optim.Adam(self.param_params, lr=cfg.lr_param,
                                      betas=tuple(cfg.adam_betas))
        self.hook = ActionGradientHook(cfg.action_gradient_strategy)

    def __call__(self, rows: dict) -> None:
        from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import (
            compute_param_loss,
            compute_q_loss,
        )
        from rllib_ext.core.target_networks import polyak_update

        module, cfg = self.module, self.cfg
        batch = {k: torch.as_tensor(v) for k, v in rows.items()}
        q_loss, _ = compute_q_loss(module, batch, cfg)
        self.q_opt.zero_grad()
        q_loss.backward()
        torch.nn.utils.clip_grad_norm_(module.q_net.parameters(), cfg.grad_clip)
        self.q_opt.step()
        param_loss, _ = compute_param_loss(module, batch, cfg, self.hook)
        self.p_opt.zero_grad()
        param_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.param_params, cfg.grad_clip)
        self.p_opt.step()
        polyak_update(module.q_net, module.target_q_net, cfg.tau_q)
        polyak_update(module.param_net, module.target_param_net, cfg.tau_param)


def plain_loop(steps: int, seed: int = 1) -> dict:
    """The reference's training loop, written directly against the rllib_ext pieces."""
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from rllib_ext.algorithms.pdqn.torch.default_pdqn_torch_rl_module import (
        DefaultPDQNTorchRLModule,
    )
    from rllib_ext.core.parameterised.action_layout import layout_from_space
    from rllib_ext.core.parameterised.parameterised_learner import linear_epsilon
    from rllib_ext.core.parameterised.parameterised_replay import ParameterisedReplay
    from rllib_ext.envs import make

    torch.manual_seed(seed)
    cfg = make_config(1)
    env = make(PLATFORM, scale=True)
    module = RLModuleSpec(
        module_class=DefaultPDQNTorchRLModule, observation_space=env.observation_space,
        action_space=env.action_space, model_config=cfg.model_config,
    ).build()
    update = PlainUpdate(module, cfg)
    replay = ParameterisedReplay(cfg.replay_capacity, 9, layout_from_space(env.action_space),
                                 seed=seed)
    obs, _ = env.reset(seed=seed)
    episodes = updates = 0
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        module.epsilon.fill_(linear_epsilon(
            episodes, initial=cfg.epsilon_initial, final=cfg.epsilon_final,
            duration=cfg.epsilon_decay_duration))
        out = module.forward_exploration({Columns.OBS: torch.as_tensor(obs[None])})[
            Columns.ACTIONS]
        k, params = int(out[0][0]), [p[0].numpy() for p in out[1:]]
        next_obs, reward, terminated, truncated, _ = env.step((k, *params))
        replay.add(**{Columns.OBS: obs[None], Columns.NEXT_OBS: next_obs[None],
                      "action_index": [k], "action_params": np.concatenate(params)[None],
                      Columns.REWARDS: [reward], Columns.TERMINATEDS: [float(terminated)]})
        obs = next_obs
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
        if step + 1 >= cfg.num_steps_sampled_before_learning_starts:
            update(replay.sample(cfg.total_train_batch_size))
            updates += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"steps_per_s": steps / elapsed, "updates_per_s": updates / elapsed,
            "cpu_ms_per_step": cpu / steps * 1e3, "module": module}


def rllib_run(steps: int, rollout_fragment_length: int, num_envs: int) -> dict:
    algo = make_config(rollout_fragment_length, num_envs).build_algo()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        updates = 0
        while True:
            result = algo.train()
            trained = result.get("learners", {}).get("__all_modules__", {})
            updates = trained.get("num_module_steps_trained_lifetime", 0) / 128
            if result["num_env_steps_sampled_lifetime"] >= steps:
                break
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        timers = result["timers"]
        per_step = {k: timers[k] for k in ("env_runner_sampling_timer", "learner_update_timer",
                                           "synch_weights", "replay_buffer_add_data_timer",
                                           "replay_buffer_sampling_timer") if k in timers}
        steps = result["num_env_steps_sampled_lifetime"]
        return {"steps_per_s": steps / elapsed, "updates_per_s": updates / elapsed,
                "cpu_ms_per_step": cpu / steps * 1e3, "timers": per_step,
                "module": algo.get_module()}
    finally:
        algo.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000, help="env steps per run (default 3000)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads for every run (default 1)")
    p.add_argument("--fragments", type=int, nargs="+", default=[1, 8],
                   help="rollout_fragment_length values of the RLlib runs (default 1 8)")
    p.add_argument("--envs", type=int, nargs="+", default=[1],
                   help="num_envs_per_env_runner values of the RLlib runs (default 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    plain = plain_loop(args.steps)
    runs = {"plain PyTorch loop": plain}
    for fragment in args.fragments:
        for num_envs in args.envs:
            runs[f"RLlib PDQN, fragment {fragment}, envs {num_envs}"] = rllib_run(
                args.steps, fragment, num_envs)
    print(f"\nMP-DQN on Platform, {args.steps} env steps, one update per env step (after 500), "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':<36} {'env steps/s':>12} {'updates/s':>10} {'vs plain':>9} "
          f"{'CPU ms/step':>12} {'vs plain':>9} {'greedy return':>14}")
    for name, r in runs.items():
        ret = greedy_return(r["module"], args.eval_episodes)
        print(f"{name:<36} {r['steps_per_s']:>12.1f} {r['updates_per_s']:>10.1f} "
              f"{r['steps_per_s'] / plain['steps_per_s']:>8.2f}x {r['cpu_ms_per_step']:>12.2f} "
              f"{plain['cpu_ms_per_step'] / r['cpu_ms_per_step']:>8.2f}x {ret:>14.3f}")
    for name, r in runs.items():
        if "timers" in r:
            parts = ", ".join(f"{k.removesuffix('_timer')} {v * 1e3:.1f} ms"
                              for k, v in r["timers"].items())
            # Mean per cycle (one sampling call and its updates; in process, a training_step
            # runs the iteration's cycles).
            print(f"{name}: per cycle {parts}")
    shutdown_local_ray()


if __name__ == "__main__":
    main()
