"""PG and H-PPO through RLlib vs a plain PyTorch loop over the *same* module and maths, side by
side (issue 29 §3): REINFORCE on CartPole-v1 and InvertedPendulum-v5, H-PPO on Moving-v0, each
with its config file's settings (``configs/pg/cartpole.yaml``,
``configs/pg/inverted_pendulum.yaml``, ``configs/hppo/moving.yaml``; evaluation off).

The plain loops step a gymnasium sync vector env of the config's ``num_envs_per_env_runner``
copies (what RLlib's env runner steps), act with the RL module's exploration forward and the
same distribution class, and update with the same losses:

- PG: reward-to-go over complete episodes, the config's baseline (the batch mean, or the value
  network's predictions in normalised return units, ``advantages.compute_advantages``),
  normalised advantages; one step of the policy and value Adams on ``-mean(log pi * A) +
  MSE(V, y)``, then ``value_gradient_steps - 1`` value-only steps. Unfinished episodes carry
  over to the next batch (nothing is thrown away).
- H-PPO: ``train_batch_size / num_envs`` steps per env, GAE(λ) with the value bootstrapped at
  the fragment's end and at truncations, advantages standardised over the batch, ``num_epochs``
  shuffled passes of ``minibatch_size``: Fan et al.'s two clipped surrogates
  (``hppo_torch_learner.hybrid_surrogates``), the per-part entropy bonus, the clipped value
  loss, one Adam with global-norm clipping.

Everything runs in this process (RLlib with ``num_env_runners=0``, ``num_learners=0``), so this
process's CPU time is the work of either; the rounds alternate plain / RLlib and the medians
are compared. Env steps/s (wall) and CPU ms per env step both include the updates. Run:

    .venv/bin/python benchmarks/on_policy_plain.py [--rows pg-cartpole pg-pendulum hppo-moving]
        [--rounds 3] [--iterations 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
ROWS = {
    "pg-cartpole": ROOT / "configs/pg/cartpole.yaml",
    "pg-pendulum": ROOT / "configs/pg/inverted_pendulum.yaml",
    "hppo-moving": ROOT / "configs/hppo/moving.yaml",
}


def build_config(path: Path, seed: int):
    from rllib_ext.cli.config_file import load_experiment

    return load_experiment(path).build_config(
        seed=seed, overrides={"evaluation": {"evaluation_interval": None}})


class VectorActor:
    """The config's env as a gymnasium sync vector env (same-step autoreset: a finished env's
    last observation is in ``info["final_obs"]``) and the config's RL module, acting as RLlib's
    env runner does: exploration forward, a sample of the exploration distribution, actions
    unsquashed / clipped to the env's bounds as the config's ``normalize_actions`` /
    ``clip_actions`` say (the sample itself is what the losses see)."""

    def __init__(self, config, seed: int):
        from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

        self.config = config
        self.env = gym.make_vec(
            config.env, num_envs=config.num_envs_per_env_runner, vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **dict(config.env_config))
        spec = config.get_rl_module_spec()
        spec.observation_space = self.env.single_observation_space
        spec.action_space = self.env.single_action_space
        self.module = spec.build()
        self.dist_cls = self.module.get_exploration_action_dist_cls()
        self.space_struct = get_base_struct_from_space(self.env.single_action_space)
        self.obs, _ = self.env.reset(seed=seed)
        self.num_envs = self.env.num_envs

    def act(self):
        """(action sample as tensors, action dist inputs, log-probs) at ``self.obs``."""
        from ray.rllib.core.columns import Columns

        with torch.no_grad():
            # The module's own forward: no train/eval switch around it (RLlib's wrapper
            # switches a full module to eval and back on every call).
            out = self.module._forward_exploration(
                {Columns.OBS: torch.as_tensor(self.obs, dtype=torch.float32)})
            inputs = out[Columns.ACTION_DIST_INPUTS]
            dist = self.dist_cls.from_logits(inputs)
            action = dist.sample()
            return action, inputs, dist.logp(action)

    def step(self, action):
        """Steps every env; returns (obs before, reward, terminated, truncated, final obs of
        the finished envs (others None))."""
        from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

        env_action = torch.utils._pytree.tree_map(lambda t: t.numpy(), action)
        if self.config.normalize_actions:
            env_action = unsquash_action(env_action, self.space_struct)
        elif self.config.clip_actions:
            env_action = clip_action(env_action, self.space_struct)
        obs = self.obs
        self.obs, reward, terminated, truncated, info = self.env.step(env_action)
        final = [None] * self.num_envs
        for i in np.flatnonzero(terminated | truncated):
            final[i] = info["final_obs"][i]
        return obs, reward, terminated, truncated, final


def _stack_actions(actions: list):
    """Per-step action structs (batched over the envs) -> one struct batched over steps."""
    return torch.utils._pytree.tree_map(lambda *t: torch.cat(t), *actions)


def _index_actions(action, index):
    return torch.utils._pytree.tree_map(lambda t: t[index], action)


class PlainPG:
    """REINFORCE as ``PG.training_step`` + ``PGTorchLearner`` compute it (module docstring)."""

    def __init__(self, config, seed: int):
        from rllib_ext.algorithms.pg.torch.pg_torch_learner import PGTorchLearner

        torch.manual_seed(seed)
        self.config, self.actor = config, VectorActor(config, seed)
        module = self.actor.module
        self.value = config.baseline == "value"
        value_params = ([*module.value_encoder.parameters(), *module.vf.parameters()]
                        if self.value else [])
        value_ids = {id(p) for p in value_params}
        self.policy_params = [p for p in module.parameters() if id(p) not in value_ids]
        self.value_params = value_params
        self.policy_opt = torch.optim.Adam(self.policy_params, lr=config.lr)
        self.value_opt = torch.optim.Adam(value_params, lr=config.value_lr) if self.value else None
        self.value_loss = PGTorchLearner._value_loss
        n = self.actor.num_envs
        self.running = [self._new_episode() for _ in range(n)]
        self.episode_returns: list[float] = []

    @staticmethod
    def _new_episode() -> dict:
        return {"obs": [], "actions": [], "rewards": [], "truncated": False}

    def collect(self) -> tuple[list[dict], int, int]:
        """(complete episodes with at least ``total_train_batch_size`` steps in all, their
        steps, env steps taken)."""
        done, steps, taken = [], 0, 0
        while steps < self.config.total_train_batch_size:
            taken += self.actor.num_envs
            action, _, _ = self.actor.act()
            obs, reward, terminated, truncated, final = self.actor.step(action)
            for i, episode in enumerate(self.running):
                episode["obs"].append(obs[i])
                episode["actions"].append(_index_actions(action, slice(i, i + 1)))
                episode["rewards"].append(float(reward[i]))
                if final[i] is not None:
                    episode["obs"].append(final[i])
                    episode["truncated"] = bool(truncated[i]) and not bool(terminated[i])
                    done.append(episode)
                    steps += len(episode["rewards"])
                    self.episode_returns.append(sum(episode["rewards"]))
                    self.running[i] = self._new_episode()
        return done, steps, taken

    def iteration(self) -> tuple[int, int]:
        from ray.rllib.core.columns import Columns

        from rllib_ext.algorithms.pg.advantages import (
            compute_advantages,
            discounted_reward_to_go,
            normalization_stats,
        )

        cfg, module = self.config, self.actor.module
        episodes, steps, taken = self.collect()
        rewards = [np.asarray(e["rewards"]) for e in episodes]
        values = bootstraps = None
        if self.value:
            # V in the batch's normalised return units, mapped back to reward units.
            mean, std = normalization_stats([discounted_reward_to_go(r, cfg.gamma)
                                             for r in rewards])
            all_obs = [np.asarray(e["obs"], np.float32) for e in episodes]
            with torch.no_grad():
                v = module.compute_values({Columns.OBS: torch.as_tensor(
                    np.concatenate(all_obs))}).numpy().astype(np.float64) * std + mean
            v = np.split(v, np.cumsum([len(o) for o in all_obs])[:-1])
            bootstraps = [vi[-1] if e["truncated"] else 0.0
                          for vi, e in zip(v, episodes, strict=True)]
            values = [vi[:-1] for vi in v]
        advantages, rtg, _, _ = compute_advantages(
            rewards, gamma=cfg.gamma, baseline=cfg.baseline, normalize=cfg.normalize_advantages,
            reward_to_go=cfg.reward_to_go, values=values, bootstrap_values=bootstraps,
            gae_lambda=cfg.gae_lambda)
        batch = {
            Columns.OBS: torch.as_tensor(np.concatenate(
                [np.asarray(e["obs"][:-1], np.float32) for e in episodes])),
            Columns.ACTIONS: _stack_actions([a for e in episodes for a in e["actions"]]),
        }
        adv = torch.as_tensor(np.concatenate(advantages), dtype=torch.float32)
        dist = module.get_train_action_dist_cls().from_logits(
            module.forward_train(batch)[Columns.ACTION_DIST_INPUTS])
        # -mean(log pi * A): gradient ascent on J (pg_torch_learner's sign flip).
        loss = -(dist.logp(batch[Columns.ACTIONS]) * adv).mean()
        if self.value:
            from rllib_ext.algorithms.pg.pg_learner import VALUE_TARGETS

            batch[VALUE_TARGETS] = torch.as_tensor(
                (np.concatenate(rtg) - mean) / std, dtype=torch.float32)
            loss = loss + self.value_loss(module, batch)[0]
        self._step(loss, self.policy_params + self.value_params,
                   [self.policy_opt] + ([self.value_opt] if self.value else []))
        for _ in range(cfg.value_gradient_steps - 1 if self.value else 0):
            self._step(self.value_loss(module, batch)[0], self.value_params, [self.value_opt])
        return taken, steps

    def _step(self, loss, params, optimizers) -> None:
        for opt in (self.policy_opt, self.value_opt):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        for opt in optimizers:
            opt.step()


class PlainHPPO:
    """H-PPO as RLlib's PPO with ``HPPOTorchLearner`` computes it (module docstring)."""

    def __init__(self, config, seed: int):
        torch.manual_seed(seed)
        self.config, self.actor = config, VectorActor(config, seed)
        self.opt = torch.optim.Adam(self.actor.module.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(seed)
        self.returns = np.zeros(self.actor.num_envs)
        self.episode_returns: list[float] = []

    def _values(self, obs: np.ndarray) -> np.ndarray:
        from ray.rllib.core.columns import Columns

        with torch.no_grad():
            return self.actor.module.compute_values(
                {Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)}).numpy()

    def iteration(self) -> tuple[int, int]:
        from ray.rllib.core.columns import Columns

        cfg, actor = self.config, self.actor
        n, horizon = actor.num_envs, cfg.total_train_batch_size // actor.num_envs
        obs, actions, inputs, logps = [], [], [], []
        rewards = np.zeros((horizon, n))
        # 1 where the step ended its episode (no bootstrap through it); at truncations the
        # value of the final observation is added to the reward instead (RLlib bootstraps
        # truncated episodes the same way).
        ends = np.zeros((horizon, n))
        for t in range(horizon):
            action, dist_inputs, logp = actor.act()
            o, r, terminated, truncated, final = actor.step(action)
            obs.append(o), actions.append(action), inputs.append(dist_inputs), logps.append(logp)
            rewards[t] = r
            self.returns += r
            for i in np.flatnonzero(terminated | truncated):
                ends[t, i] = 1.0
                if truncated[i] and not terminated[i]:
                    rewards[t, i] += cfg.gamma * self._values(final[i][None])[0]
                self.episode_returns.append(float(self.returns[i]))
                self.returns[i] = 0.0
        values = self._values(np.concatenate(obs)).reshape(horizon, n)
        next_value = self._values(actor.obs)
        # GAE(lambda): A_t = delta_t + gamma lambda (1 - end_t) A_{t+1},
        # delta_t = r_t + gamma (1 - end_t) V(s_{t+1}) - V(s_t).
        advantages = np.zeros((horizon, n))
        last = np.zeros(n)
        for t in reversed(range(horizon)):
            v_next = next_value if t == horizon - 1 else values[t + 1]
            delta = rewards[t] + cfg.gamma * (1.0 - ends[t]) * v_next - values[t]
            last = delta + cfg.gamma * cfg.lambda_ * (1.0 - ends[t]) * last
            advantages[t] = last
        targets = (advantages + values).reshape(-1)
        advantages = advantages.reshape(-1)
        advantages = (advantages - advantages.mean()) / max(1e-4, advantages.std())
        batch = {
            Columns.OBS: torch.as_tensor(np.concatenate(obs), dtype=torch.float32),
            Columns.ACTIONS: _stack_actions(actions),
            Columns.ACTION_DIST_INPUTS: torch.cat(inputs),
            Columns.ACTION_LOGP: torch.cat(logps),
            "advantages": torch.as_tensor(advantages, dtype=torch.float32),
            "value_targets": torch.as_tensor(targets, dtype=torch.float32),
        }
        size = len(advantages)
        for _ in range(cfg.num_epochs):
            order = self.rng.permutation(size)
            for start in range(0, size, cfg.minibatch_size):
                index = torch.as_tensor(order[start:start + cfg.minibatch_size])
                self._update({k: (_index_actions(v, index) if k == Columns.ACTIONS else v[index])
                              for k, v in batch.items()})
        return horizon * n, horizon * n

    def _update(self, batch: dict) -> None:
        from ray.rllib.core.columns import Columns

        from rllib_ext.algorithms.hppo.torch.hppo_torch_learner import hybrid_surrogates

        cfg, module = self.config, self.actor.module
        out = module.forward_train(batch)
        curr = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        prev = module.get_exploration_action_dist_cls().from_logits(
            batch[Columns.ACTION_DIST_INPUTS])
        surrogate, _ = hybrid_surrogates(
            curr, prev, batch[Columns.ACTIONS], batch["advantages"], clip_param=cfg.clip_param,
            surrogate=cfg.surrogate, old_logp=batch[Columns.ACTION_LOGP])
        h_k, h_x = curr.entropy_parts()
        values = module.compute_values(batch, embeddings=out.get(Columns.EMBEDDINGS))
        vf_loss = torch.clamp((values - batch["value_targets"]) ** 2, 0, cfg.vf_clip_param)
        # Minimise -surrogate + c_v * value loss - entropy bonus (the learner's loss).
        loss = (-surrogate + cfg.vf_loss_coeff * vf_loss
                - cfg.entropy_coeff_discrete * h_k - cfg.entropy_coeff_continuous * h_x).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        self.opt.step()


PLAIN = {"PG": PlainPG, "HPPO": PlainHPPO}


def timed(iterate, iterations: int) -> dict:
    """Runs one warm-up iteration, then ``iterations`` timed ones; ``iterate()`` returns the
    env steps it sampled and the env steps the update trained on."""
    iterate()
    cpu, wall, steps, trained = time.process_time(), time.perf_counter(), 0, 0
    for _ in range(iterations):
        sampled, used = iterate()
        steps, trained = steps + sampled, trained + used
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"steps": steps, "steps_per_s": steps / wall, "cpu_ms_per_step": cpu / steps * 1e3,
            "trained_fraction": trained / steps, "trained_per_s": trained / wall}


def plain_run(config, iterations: int, seed: int) -> dict:
    loop = PLAIN[type(config).__name__.removesuffix("Config")](config, seed)
    result = timed(loop.iteration, iterations)
    result["return"] = float(np.mean(loop.episode_returns[-20:]))
    return result


def rllib_run(config, iterations: int) -> dict:
    algo = config.build_algo()
    # The env steps each update receives, counted on the way in (the learners' own counter
    # counts every sampled step for PG and every minibatch pass for PPO).
    received = [0]
    update = algo.learner_group.update

    def counting_update(*args, episodes=None, **kwargs):
        received[0] += sum(episode.env_steps() for episode in episodes or ())
        return update(*args, episodes=episodes, **kwargs)

    algo.learner_group.update = counting_update
    try:
        last = {}

        def iterate() -> tuple[int, int]:
            sampled = last.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0)
            trained = received[0]
            last.update(algo.train())
            return (last["env_runners"]["num_env_steps_sampled_lifetime"] - sampled,
                    received[0] - trained)

        result = timed(iterate, iterations)
        result["return"] = float(last["env_runners"].get("episode_return_mean", float("nan")))
        return result
    finally:
        algo.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per row (3)")
    p.add_argument("--iterations", type=int, default=4,
                   help="timed training iterations per run, after one warm-up (4)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    import rllib_ext
    from rllib_ext.cli.config_file import ConfigError
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    init_local_ray(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    rllib_ext.register()
    table = []
    for row in args.rows:
        try:
            config = build_config(ROWS[row], args.seed)
        except ConfigError as e:  # e.g. InvertedPendulum without the MuJoCo extra
            print(f"{row}: skipped ({e})")
            continue
        runs = {"plain": [], "rllib": []}
        for r in range(args.rounds):
            runs["plain"].append(plain_run(config, args.iterations, args.seed + r))
            runs["rllib"].append(rllib_run(build_config(ROWS[row], args.seed + r),
                                           args.iterations))
            print(f"{row} round {r}: " + ", ".join(
                f"{k} {v[-1]['steps_per_s']:.0f} steps/s, {v[-1]['cpu_ms_per_step']:.3f} CPU "
                f"ms/step, {v[-1]['trained_fraction']:.0%} trained ({v[-1]['steps']:.0f} "
                f"steps, return {v[-1]['return']:.1f})" for k, v in runs.items()), flush=True)
        med = {k: {m: statistics.median(x[m] for x in v)
                   for m in ("steps_per_s", "cpu_ms_per_step", "trained_fraction",
                             "trained_per_s")}
               for k, v in runs.items()}
        table.append((row, med))
    shutdown_local_ray()
    print(f"\nOn-policy: RLlib vs a plain PyTorch loop, medians of {args.rounds} alternating "
          f"rounds of {args.iterations} iterations, torch threads 1. Sampled env steps; "
          "'trained' = the share of them the update used, and trained env steps/s")
    print(f"{'row':<12} {'plain steps/s':>13} {'RLlib':>7} {'vs plain':>9} {'plain CPU ms':>13} "
          f"{'RLlib':>7} {'vs plain':>9} {'trained: plain':>15} {'RLlib':>6} "
          f"{'trained/s vs plain':>19}")
    for row, med in table:
        plain, rl = med["plain"], med["rllib"]
        print(f"{row:<12} {plain['steps_per_s']:>13.0f} {rl['steps_per_s']:>7.0f} "
              f"{rl['steps_per_s'] / plain['steps_per_s']:>8.2f}x "
              f"{plain['cpu_ms_per_step']:>13.3f} {rl['cpu_ms_per_step']:>7.3f} "
              f"{plain['cpu_ms_per_step'] / rl['cpu_ms_per_step']:>8.2f}x "
              f"{plain['trained_fraction']:>15.0%} {rl['trained_fraction']:>6.0%} "
              f"{rl['trained_per_s'] / plain['trained_per_s']:>18.2f}x")

if __name__ == "__main__":
    main()
