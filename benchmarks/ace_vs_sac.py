"""ACE's training speed against RLlib's SAC and against the same maths in plain PyTorch, side
by side in one run.

Rows (all on ``rllib_ext/CausalReach-v0``: 6-d observations and actions, one gradient update
per env step, batch ``--batch``, hidden layers ``--hiddens``, 0 remote env runners):

* ``SAC``: RLlib's built-in SAC (its episode replay, learner connector, one update per
  ``training_step``), prioritised replay (alpha 0.6, beta 0.4);
* ``ACE``: this project's ACE (lean replay and learner path), the same replay settings, with
  its causal actor fitting every ``--causal-interval`` env steps on the last
  ``--causal-sample-size`` transitions and soft resets every ``--reset-interval`` updates, so
  the measured window includes fits and resets;
* ``plain``: a plain-PyTorch SAC gradient step (twin Q + Polyak targets, tanh-Gaussian
  policy, alpha; ReLU layers as all rows; uniform batches from a tensor replay), no env: the
  maths' own cost.

Rounds alternate SAC / ACE / plain so that load drift on a shared machine hits all three.
Prints env-steps/s and updates/s of each and the ratios ACE/SAC and ACE/plain.

Run:
    .venv/bin/python benchmarks/ace_vs_sac.py [--steps 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import time

ENV = "rllib_ext/CausalReach-v0"
OBS_DIM = ACT_DIM = 6


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
                        reset_interval=args.reset_interval, q_network=args.q_network,
                        policy_update_freq=args.policy_update_freq)
    env_runners = {"num_env_runners": 0}
    if name == "ACE":
        env_runners["rollout_fragment_length"] = args.fragment
    return (
        config.environment(ENV)
        .env_runners(**env_runners)
        .training(**training)
        .rl_module(model_config={"fcnet_hiddens": args.hiddens, "fcnet_activation": "relu"})
        .reporting(min_sample_timesteps_per_iteration=100, min_time_s_per_iteration=0)
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


class PlainSAC:
    """SAC's gradient step in plain PyTorch (Haarnoja et al. 2018, with twin critics, Polyak
    targets and automatic temperature), the per-step work ACE's learner does."""

    def __init__(self, hiddens, batch: int, seed: int = 0):
        import torch

        torch.manual_seed(seed)

        def mlp(inp, out):
            layers, width = [], inp
            for h in hiddens:
                layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
                width = h
            return torch.nn.Sequential(*layers, torch.nn.Linear(width, out))

        self.torch = torch
        self.pi = mlp(OBS_DIM, 2 * ACT_DIM)
        self.qs = torch.nn.ModuleList([mlp(OBS_DIM + ACT_DIM, 1) for _ in range(2)])
        self.targets = torch.nn.ModuleList([mlp(OBS_DIM + ACT_DIM, 1) for _ in range(2)])
        self.targets.load_state_dict(self.qs.state_dict())
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.opt_q = torch.optim.Adam(self.qs.parameters(), lr=3e-4)
        self.opt_pi = torch.optim.Adam(self.pi.parameters(), lr=3e-4)
        self.opt_alpha = torch.optim.Adam([self.log_alpha], lr=3e-4)
        n = 100_000
        self.data = [torch.randn(n, OBS_DIM), torch.rand(n, ACT_DIM) * 2 - 1, torch.randn(n),
                     torch.randn(n, OBS_DIM), torch.zeros(n)]
        self.batch = batch

    def _sample(self, obs):
        mean, log_std = self.pi(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        x = mean + std * self.torch.randn_like(mean)
        logp = (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
                - 2 * (math.log(2) - x - self.torch.nn.functional.softplus(-2 * x))).sum(-1)
        return self.torch.tanh(x), logp

    def step(self) -> None:
        torch = self.torch
        idx = torch.randint(0, len(self.data[0]), (self.batch,))
        s, a, r, s2, done = (d[idx] for d in self.data)
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self._sample(s2)
            sa2 = torch.cat([s2, a2], -1)
            q_next = torch.min(*(t(sa2).squeeze(-1) for t in self.targets)) - alpha * logp2
            y = r + 0.99 * (1 - done) * q_next
        sa = torch.cat([s, a], -1)
        q_loss = sum(torch.nn.functional.mse_loss(q(sa).squeeze(-1), y) for q in self.qs)
        self.opt_q.zero_grad()
        q_loss.backward()
        self.opt_q.step()
        a_new, logp = self._sample(s)
        q_new = torch.min(*(q(torch.cat([s, a_new], -1)).squeeze(-1) for q in self.qs))
        pi_loss = (alpha * logp - q_new).mean()
        self.opt_pi.zero_grad()
        pi_loss.backward()
        self.opt_pi.step()
        alpha_loss = -(self.log_alpha * (logp.detach() - ACT_DIM)).mean()
        self.opt_alpha.zero_grad()
        alpha_loss.backward()
        self.opt_alpha.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.targets.parameters()), list(self.qs.parameters()),
                                 0.005)

    def run_for(self, steps: int) -> tuple[float, int, int]:
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start, 0, steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="measured env steps per algorithm")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hiddens", type=int, nargs="+", default=[256, 256])
    p.add_argument("--fragment", type=int, default=32,
                   help="ACE's rollout_fragment_length (updates per learner call)")
    p.add_argument("--causal-sample-size", type=int, default=500)
    p.add_argument("--causal-interval", type=int, default=500)
    p.add_argument("--reset-interval", type=int, default=500)
    p.add_argument("--q-network", default="concat", choices=("concat", "multi_stream"),
                   help="ACE's critics (multi_stream = RLlib SAC's)")
    p.add_argument("--policy-update-freq", type=int, default=2,
                   help="ACE's delayed policy updates (1 = SAC's schedule, as the plain row)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (all three rows learn here)")
    p.add_argument("--sac-steps", type=int, default=None,
                   help="measured env steps of RLlib's SAC (default --steps / 5: it is slow)")
    args = p.parse_args()

    import torch

    import rllib_ext
    from rllib_ext.core.ray_session import init_local_ray, shutdown_local_ray

    torch.set_num_threads(args.threads)
    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rllib_ext.register()
    algos, last, totals = {}, {}, {}
    try:
        for name in ("SAC", "ACE"):
            algos[name] = build(name, args)
            # Warm-up: past learning start and (ACE) the first causal fit submission.
            result = algos[name].train()
            while env_steps(result) < max(2 * args.batch, args.causal_sample_size + 100):
                result = algos[name].train()
            last[name] = result
        threads = torch.get_num_threads()
        plain = PlainSAC(args.hiddens, args.batch)
        plain.run_for(20)
        totals = {name: [0.0, 0, 0] for name in ("SAC", "ACE", "plain")}
        sac_steps = args.sac_steps or max(100, args.steps // 5)
        for _ in range(args.rounds):
            for name in ("SAC", "ACE", "plain"):
                if name == "plain":
                    measured = plain.run_for(args.steps // args.rounds)
                else:
                    budget = (sac_steps if name == "SAC" else args.steps) // args.rounds
                    *measured, last[name] = run_for(algos[name], budget, last[name])
                totals[name] = [t + x for t, x in zip(totals[name], measured, strict=True)]
                print(f"round: {name} {measured[1]} env steps, {measured[2]} updates in "
                      f"{measured[0]:.1f} s", flush=True)
        ace = last["ACE"]["ace"]
    finally:
        for algo in algos.values():
            algo.stop()
        shutdown_local_ray()

    print(f"env {ENV}, batch {args.batch}, hiddens {args.hiddens}, {args.rounds} alternating "
          f"rounds, 0 remote env runners, torch threads {threads}; ACE: fragment "
          f"{args.fragment}, q_network {args.q_network}, policy_update_freq "
          f"{args.policy_update_freq}")
    print(f"{'row':<6} {'seconds':>8} {'env steps':>10} {'updates':>8} {'env-steps/s':>12} "
          f"{'updates/s':>10}")
    rates = {}
    for name, (seconds, steps, num_updates) in totals.items():
        rates[name] = (steps / seconds, num_updates / seconds)
        print(f"{name:<6} {seconds:>8.1f} {steps:>10} {num_updates:>8} {rates[name][0]:>12.2f} "
              f"{rates[name][1]:>10.2f}")
    print(f"ACE/SAC: env-steps/s {rates['ACE'][0] / rates['SAC'][0]:.2f}x, "
          f"updates/s {rates['ACE'][1] / rates['SAC'][1]:.2f}x; "
          f"ACE/plain updates/s {rates['ACE'][1] / rates['plain'][1]:.2f}x")
    print(f"ACE during the run: {ace['causal_fits']} causal fits (last {ace['causal_fit_s']:.2f} s "
          f"in the actor, latency {ace['causal_fit_latency_s']:.2f} s, "
          f"{ace['causal_fallbacks']} fallbacks), {ace['num_resets']} resets, "
          f"weights {[round(ace[f'causal_weight_{i}'], 3) for i in range(ACT_DIM)]}")


if __name__ == "__main__":
    main()
