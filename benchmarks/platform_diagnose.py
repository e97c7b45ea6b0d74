"""What a trained P-DQN-family agent does on Platform: one greedy episode step by step, and at
the step where it fails, what its Q-network believes about the chosen action's parameter
against what the environment actually gives. Run on module states written by
``platform_seed_study.py run ... --save-weights``:

    .venv/bin/python benchmarks/platform_diagnose.py configs/pdqn/platform.yaml \
        benchmarks/seed_study/mpdqn/seed_3_last.pt [--episode-seed 1000000] [--set ...]

Per macro-step it prints the player's x, the action and its parameter (env units), the three
Q-values (each with its own action's parameters), dQ_k/dx_k of every action and the gradient
after the action-gradient strategy (inverting gradients pulls it to 0 at the bound it pushes
towards). At the step that ends the episode short of the goal (a fall or an enemy) it sweeps
that action's parameter over its range: the Q-network's Q_k(s, x) beside the return the
environment really gives for taking (k, x) there and then following the same greedy policy
(the environment is copied, so every point starts from the same state and noise stream).
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from platform_seed_study import greedy_action, parse_overrides


def build_module(config_path: str, state_path: str, overrides: dict):
    import gymnasium as gym

    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.envs import make

    experiment = load_experiment(config_path)
    config = experiment.build_config(seed=0, overrides=overrides)
    env = make(experiment.env, **experiment.env_config)
    module = config.get_rl_module_spec(env=env).build()
    module.set_state(torch.load(state_path, weights_only=False))
    module.eval()
    assert isinstance(env.action_space, gym.spaces.Tuple)
    return module, env, config


def q_and_grads(module, hook, obs: np.ndarray):
    """Q-values (K,), the parameters (P,), dQ_k/dx (P,) (each Q_k on its own slots) and that
    gradient after the action-gradient strategy."""
    o = torch.as_tensor(obs[None], dtype=torch.float32)
    params = module.param_net(o).detach().requires_grad_(True)
    q = module.q_net(o, params)
    (grad,) = torch.autograd.grad(q.sum(), params)
    bounded = hook(grad.clone(), params.detach(), -1.0, 1.0)
    return q[0].detach().numpy(), params[0].detach().numpy(), grad[0].numpy(), bounded[0].numpy()


def rollout(module, env, first_action, gamma: float) -> tuple[float, float]:
    """(return, discounted return) from taking ``first_action`` in ``env`` now and acting
    greedily afterwards."""
    total, discounted, discount, done, action = 0.0, 0.0, 1.0, False, first_action
    while not done:
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        discounted += discount * float(reward)
        discount *= gamma
        done = terminated or truncated
        action = greedy_action(module, obs)
    return total, discounted


def main() -> None:
    from rllib_ext.envs.platform import ACTION_NAMES, PARAMETERS_MAX, PARAMETERS_MIN, TOTAL_WIDTH
    from rllib_ext.hooks import ActionGradientHook

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("state", help="a module state file (seed_<n>_{last,best}.pt)")
    parser.add_argument("--episode-seed", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=21, help="parameter values swept")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()

    module, env, config = build_module(args.config, args.state, parse_overrides(args.set))
    hook = ActionGradientHook(config.action_gradient_strategy)
    base = env.unwrapped
    obs, _ = env.reset(seed=args.episode_seed)
    total, done, t = 0.0, False, 0
    print(f"{'t':>2} {'x':>6} {'action':>6} {'param':>7}   Q(run, hop, leap)       "
          "dQ/dx (run, hop, leap)    after the strategy")
    while not done:
        q, params, grad, bounded = q_and_grads(module, hook, obs)
        action = greedy_action(module, obs)
        k = action[0]
        low, high = PARAMETERS_MIN[k], PARAMETERS_MAX[k]
        value = low + (float(action[1 + k][0]) + 1) / 2 * (high - low)
        before = (copy.deepcopy(env), obs)
        x = base.player.x
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
        print(f"{t:>2} {x:6.1f} {ACTION_NAMES[k]:>6} {value:7.1f}   "
              f"{np.array2string(q, precision=3):22} {np.array2string(grad, precision=3):25} "
              f"{np.array2string(bounded, precision=3)}")
        t += 1
    print(f"return {total:.3f} (x {base.player.x:.1f} of {TOTAL_WIDTH:.0f})")
    if total >= 0.99:
        return
    # The failing step: sweep its action's parameter.
    env_before, obs_before = before
    o = torch.as_tensor(obs_before[None], dtype=torch.float32)
    with torch.no_grad():
        params = module.param_net(o)[0]
    print(f"\nat the last step (x {x:.1f}), action {ACTION_NAMES[k]}: actor proposes "
          f"{value:.1f}; sweep of its parameter")
    print(f"{'param':>7} {'norm':>6} {'Q_k(s,x)':>9} {'disc. return':>12} {'episode return':>14}")
    before_step = total - float(reward)
    offset = k  # Platform: one parameter per action
    for u in np.linspace(-1, 1, args.points):
        p = params.clone()
        p[offset] = float(u)
        with torch.no_grad():
            qk = float(module.q_net(o, p[None])[0, k])
        action = [k] + [np.zeros(1, np.float32) for _ in range(3)]
        action[1 + k] = np.array([u], np.float32)
        ret, disc = rollout(module, copy.deepcopy(env_before), tuple(action), config.gamma)
        value = PARAMETERS_MIN[k] + (u + 1) / 2 * (PARAMETERS_MAX[k] - PARAMETERS_MIN[k])
        print(f"{value:7.1f} {u:6.2f} {qk:9.3f} {disc:12.3f} {before_step + ret:14.3f}")


if __name__ == "__main__":
    main()
