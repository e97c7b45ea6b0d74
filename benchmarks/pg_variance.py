"""Policy-gradient estimators side by side: gradient variance, then sample efficiency.

Part 1 (variance). Trains PG briefly on CartPole-v1, freezes that policy snapshot, samples many
independent batches of complete episodes from it and computes, *on the same batches*, the
gradient estimate 1/N sum_t grad log pi(a_t|s_t) (G_t - b) of each estimator:

    none         whole return R(tau) at every step, no baseline
    rtg          reward-to-go G_t
    rtg+mean     G_t - batch mean of G           (PGConfig baseline="mean")
    rtg+time     G_t - batch mean of G at step t (baseline="time_mean")
    rtg+optimal  G_t - b_k, per-parameter variance-optimal b (baseline="optimal")
    rtg+value    G_t - V(s_t), the snapshot's learned value network (baseline="value")
    gae0.95      GAE(lambda=0.95) on the same V (baseline="value", gae_lambda=0.95)
    */loo        the same two baselines estimated leave-one-out (episode i's baseline from
                 the other episodes only): exactly unbiased, for comparison, not a PG option

and prints the total variance (trace of the covariance over batches) with its ratios to "none"
and "rtg", the norm of the mean gradient next to the noise left in that mean
(sqrt(trace / K) for K batches; all estimators target the same gradient, up to the O(1/E) bias
of batch-estimated baselines), and the cost of the optimal baseline's per-trajectory gradients
relative to the plain surrogate's backward pass.

Part 2 (sample efficiency). On-policy PG against off_policy_reuse=M with each importance
sampling mode, at equal env steps, several seeds; prints the mean return over the last
iterations and over the whole run (area under the curve) with their ratios to on-policy.

Run: .venv/bin/python benchmarks/pg_variance.py [--batches K] [--seeds 0 1 2] [--env-steps N]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

MODEL = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}


def snapshot(iterations: int, seed: int):
    """A PG algorithm trained for ``iterations`` steps (rtg + the learned value baseline, so the
    snapshot has a fitted value network for the value rows)."""
    from rllib_ext import PGConfig

    config = (
        PGConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(lr=0.005, train_batch_size_per_learner=2000, baseline="value",
                  value_lr=5e-3, value_gradient_steps=20)
        .rl_module(model_config=MODEL)
        .debugging(seed=seed, log_level="ERROR")
    )
    algo = config.build_algo()
    for _ in range(iterations):
        result = algo.train()
    return algo, result["env_runners"]["episode_return_mean"]


def batch_gradients(module, episodes, gamma: float) -> tuple[dict[str, np.ndarray], float, float]:
    """Flat gradient estimate of every estimator on one batch, and the two timings (s)."""
    import torch
    from ray.rllib.core.columns import Columns

    from rllib_ext.algorithms.pg.advantages import (
        compute_advantages,
        discounted_reward_to_go,
        normalization_stats,
    )
    from rllib_ext.algorithms.pg.torch.score_gradients import (
        optimal_baseline,
        per_trajectory_score_sums,
    )

    rewards = [ep.get_rewards() for ep in episodes]
    obs = torch.as_tensor(np.concatenate([ep.get_observations()[:-1] for ep in episodes]))
    actions = torch.as_tensor(np.concatenate([ep.get_actions() for ep in episodes]))
    lengths = [len(r) for r in rewards]
    index = torch.as_tensor(np.repeat(np.arange(len(episodes)), lengths))
    n = len(index)

    def coefficients(**kwargs):
        adv, _, _, _ = compute_advantages(rewards, gamma=gamma, normalize=False, **kwargs)
        return torch.as_tensor(np.concatenate(adv), dtype=torch.float32)

    # The value network at every observation (T + 1 per episode), in reward units as PG maps
    # them (the batch's reward-to-go statistics); the last one bootstraps truncated episodes.
    with torch.no_grad():
        normalized = module.compute_values({Columns.OBS: torch.as_tensor(np.concatenate(
            [ep.get_observations() for ep in episodes]))}).double().numpy()
    mean, std = normalization_stats([discounted_reward_to_go(r, gamma) for r in rewards])
    values = np.split(normalized * std + mean, np.cumsum([len(r) + 1 for r in rewards])[:-1])
    value_kwargs = {"baseline": "value", "values": [v[:-1] for v in values],
                    "bootstrap_values": [v[-1] if ep.is_truncated else 0.0
                                         for v, ep in zip(values, episodes, strict=True)]}

    weights = {
        "g": torch.ones(n),
        "none": coefficients(baseline="none", reward_to_go=False),
        "rtg": coefficients(baseline="none"),
        "rtg+mean": coefficients(baseline="mean"),
        "rtg+time": coefficients(baseline="time_mean"),
        "rtg+value": coefficients(**value_kwargs),
        "gae0.95": coefficients(**value_kwargs, gae_lambda=0.95),
    }
    # Cost reference: the plain surrogate's forward + backward pass on the same batch.
    start = time.perf_counter()
    module.zero_grad()
    out = module.forward_train({Columns.OBS: obs})
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    (-(dist.logp(actions) * weights["rtg"]).mean()).backward()
    plain_s = time.perf_counter() - start

    # What the learner computes for baseline="optimal": g and h sums over each trajectory.
    start = time.perf_counter()
    per_trajectory_score_sums(
        module, obs, actions, index, len(episodes), {"g": weights["g"], "h": weights["rtg"]}
    )
    per_trajectory_s = time.perf_counter() - start

    sums = per_trajectory_score_sums(module, obs, actions, index, len(episodes), weights)

    # Leave-one-out mean baseline: episode i's b from the other episodes' steps.
    rtg_sums = torch.zeros(len(episodes)).index_add_(0, index, weights["rtg"])
    steps = torch.as_tensor(lengths, dtype=torch.float32)
    mean_loo = (rtg_sums.sum() - rtg_sums) / (n - steps)

    names = ("none", "rtg", "rtg+mean", "rtg+time", "rtg+optimal", "rtg+mean/loo", "rtg+opt/loo",
             "rtg+value", "gae0.95")
    flat = {name: [] for name in names}
    for pname in sums["g"]:
        g = sums["g"][pname]
        for name in ("none", "rtg", "rtg+mean", "rtg+time", "rtg+value", "gae0.95"):
            flat[name].append(sums[name][pname].sum(0) / n)
        h = sums["rtg"][pname]
        b = optimal_baseline(g, h)
        flat["rtg+optimal"].append((h.sum(0) - b * g.sum(0)) / n)
        per_episode = mean_loo.reshape(-1, *([1] * (g.dim() - 1)))
        flat["rtg+mean/loo"].append((h - per_episode * g).sum(0) / n)
        num, den = (g * h).sum(0) - g * h, (g * g).sum(0) - g * g
        b_loo = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)
        flat["rtg+opt/loo"].append((h - b_loo * g).sum(0) / n)
    grads = {k: torch.cat([x.reshape(-1) for x in v]).double().numpy() for k, v in flat.items()}
    return grads, plain_s, per_trajectory_s


def variance_table(batches: int, episodes_per_batch: int, snapshot_iterations: int) -> None:
    algo, snapshot_return = snapshot(snapshot_iterations, seed=0)
    try:
        runner = algo.env_runner_group.local_env_runner
        # The runner's module is inference-only (no forward_train); score gradients need a
        # training module with the same weights, as the learner has.
        module = algo.config.get_rl_module_spec(env=gym.make("CartPole-v1")).build()
        module.set_state(algo.learner_group.get_weights()["default_policy"])
        # Score gradients are the policy's: the value network only supplies V(s) (frozen, so
        # the per-trajectory gradients and the parameter count leave it out).
        for p in [*module.value_encoder.parameters(), *module.vf.parameters()]:
            p.requires_grad_(False)
        grads, plain, extra, steps = [], [], [], 0
        for _ in range(batches):
            episodes = runner.sample(num_episodes=episodes_per_batch, explore=True)
            steps += sum(len(ep) for ep in episodes)
            g, p, e = batch_gradients(module, episodes, algo.config.gamma)
            grads.append(g)
            plain.append(p)
            extra.append(e)
    finally:
        algo.stop()

    names = list(grads[0])
    stacked = {k: np.stack([g[k] for g in grads]) for k in names}
    total_var = {k: float(v.var(0, ddof=1).sum()) for k, v in stacked.items()}
    num_params = stacked["rtg"].shape[1]
    print(f"\nPart 1: gradient variance at a fixed policy (CartPole-v1, after "
          f"{snapshot_iterations} PG iterations, episode_return_mean {snapshot_return:.1f})")
    print(f"{batches} batches x {episodes_per_batch} episodes ({steps / batches:.0f} steps per "
          f"batch on average), {num_params:,} parameters, same batches for every estimator")
    print(f"{'estimator':<12} {'trace(Cov)':>12} {'/ none':>8} {'/ rtg':>8} "
          f"{'|mean grad|':>12} {'sqrt(tr/K)':>11}")
    for k in names:
        norm = float(np.linalg.norm(stacked[k].mean(0)))
        noise = float(np.sqrt(total_var[k] / batches))
        print(f"{k:<12} {total_var[k]:>12.4g} {total_var[k] / total_var['none']:>8.3f} "
              f"{total_var[k] / total_var['rtg']:>8.3f} {norm:>12.3f} {noise:>11.3f}")
    print(f"optimal-baseline cost: per-trajectory gradients {np.median(extra) * 1e3:.1f} ms vs "
          f"plain surrogate backward {np.median(plain) * 1e3:.1f} ms per batch (median), "
          f"ratio {np.median(extra) / np.median(plain):.1f}x")


SETTINGS = {
    "on-policy": {},
    "per_step": {"importance_sampling": "per_step"},
    "per_decision": {"importance_sampling": "per_decision"},
    "trajectory": {"importance_sampling": "trajectory"},
}


def learning_run(setting: dict, reuse: int, seed: int, env_steps: int, batch: int) -> list:
    from rllib_ext import PGConfig

    config = (
        PGConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(
            lr=0.005,
            train_batch_size_per_learner=batch,
            off_policy_reuse=reuse if setting else 0,
            **setting,
        )
        .rl_module(model_config=MODEL)
        .debugging(seed=seed, log_level="ERROR")
    )
    algo = config.build_algo()
    curve = []
    try:
        while True:
            r = algo.train()
            steps = r["num_env_steps_sampled_lifetime"]
            curve.append(
                (steps, r["env_runners"]["episode_return_mean"],
                 r["learners"]["default_policy"].get("is_effective_sample_size", np.nan))
            )
            if steps >= env_steps:
                return curve
    finally:
        algo.stop()


def sample_efficiency(seeds: list[int], env_steps: int, reuse: int, batch: int) -> None:
    print(f"\nPart 2: sample efficiency, CartPole-v1, {env_steps:,} env steps per run, "
          f"{batch} steps per update, off_policy_reuse={reuse} (IS modes), seeds {seeds}")
    rows = {}
    for name, setting in SETTINGS.items():
        finals, aucs, ess = [], [], []
        for seed in seeds:
            start = time.perf_counter()
            curve = learning_run(setting, reuse, seed, env_steps, batch)
            returns = np.array([c[1] for c in curve])
            finals.append(returns[-5:].mean())
            aucs.append(returns.mean())
            reused = [c[2] for c in curve[reuse + 1:]]  # iterations with M past batches
            ess.append(np.mean(reused) if setting and reused else np.nan)
            print(f"  {name:<13} seed {seed}: last-5-iteration return {finals[-1]:6.1f}, "
                  f"mean over run {aucs[-1]:6.1f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        rows[name] = (np.array(finals), np.array(aucs), np.array(ess))
    base_final, base_auc = rows["on-policy"][0].mean(), rows["on-policy"][1].mean()
    print(f"{'setting':<13} {'final return':>16} {'/ on-pol':>8} {'mean return':>16} "
          f"{'/ on-pol':>8} {'ESS / update':>13}")
    for name, (finals, aucs, ess) in rows.items():
        ess_txt = f"{np.mean(ess):>13.0f}" if not np.isnan(ess).all() else f"{'-':>13}"
        print(f"{name:<13} {finals.mean():>7.1f} ± {finals.std():>6.1f} "
              f"{finals.mean() / base_final:>8.2f} {aucs.mean():>7.1f} ± {aucs.std():>6.1f} "
              f"{aucs.mean() / base_auc:>8.2f} {ess_txt}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=100, help="independent batches (part 1)")
    p.add_argument("--episodes-per-batch", type=int, default=10)
    p.add_argument("--snapshot-iterations", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--env-steps", type=int, default=50_000, help="budget per run (part 2)")
    p.add_argument("--batch", type=int, default=1000, help="env steps per update (part 2)")
    p.add_argument("--reuse", type=int, default=2, help="off_policy_reuse M (part 2)")
    p.add_argument("--skip-variance", action="store_true")
    p.add_argument("--skip-efficiency", action="store_true")
    args = p.parse_args()
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        if not args.skip_variance:
            variance_table(args.batches, args.episodes_per_batch, args.snapshot_iterations)
        if not args.skip_efficiency:
            sample_efficiency(args.seeds, args.env_steps, args.reuse, args.batch)
    finally:
        shutdown_local_ray()


if __name__ == "__main__":
    main()
