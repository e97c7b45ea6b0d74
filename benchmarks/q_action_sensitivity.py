"""Does a SAC/ACE critic still depend on the action? A post-mortem for stalled runs.

RLlib 2.60's SAC Q-encoder is a multi-stream encoder: the action goes through its own MLP
stream (``fcnet_hiddens``, ``fcnet_activation``) before it is fused with the observation
stream. With ReLU, every unit of that action stream's last layer can die; then Q(s, a) no
longer depends on a, the policy gradient through Q is exactly zero and the policy stays at its
maximum-entropy initialisation for good (seen on Pendulum-v1, seed 2, with both ACE and SAC).

For each checkpoint under RUN_DIR this prints, per critic, how many units of the action
stream's last layer are active for some action on a grid over the (normalised) action box,
and the mean |dQ/da| over a batch of observations from the env.

Run:
    .venv/bin/python benchmarks/q_action_sensitivity.py tune_runs/<experiment> [--env Pendulum-v1]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

import rllib_ext


def live_action_units(encoder, grid: torch.Tensor) -> tuple[int, int]:
    """(units of the action stream's last activation that are > 0 for some grid action, all)."""
    with torch.no_grad():
        out = encoder.base_encoders["actions"]({Columns.OBS: grid})
    out = out[next(iter(out))] if isinstance(out, dict) else out
    return int((out > 0).any(0).sum()), out.shape[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--obs", type=int, default=256, help="observations sampled from the env")
    args = parser.parse_args()
    rllib_ext.register()

    env = gym.make(args.env)
    obs = torch.tensor(np.stack([env.observation_space.sample() for _ in range(args.obs)]),
                       dtype=torch.float32)
    dim = env.action_space.shape[0]
    axis = torch.linspace(-1.0, 1.0, 21 if dim <= 2 else 5)
    grid = torch.tensor(list(itertools.product(axis.tolist(), repeat=dim)), dtype=torch.float32)

    paths = sorted(Path(args.run_dir).resolve().rglob("learner_group/learner/rl_module/*"))
    for path in (p for p in paths if p.is_dir()):
        module = RLModule.from_checkpoint(str(path))
        actions = torch.empty(len(obs), dim).uniform_(-1, 1).requires_grad_(True)
        q = module.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: actions})
        (grad,) = torch.autograd.grad(q.sum(), actions)
        streams = {name: live_action_units(getattr(module, name), grid)
                   for name in ("qf_encoder", "qf_twin_encoder") if hasattr(module, name)}
        live = ", ".join(f"{n}: {a}/{b} live" for n, (a, b) in streams.items())
        print(f"{path.parents[4].name}: action-stream units {live}; "
              f"mean |dQ/da| (min of twin Q) = {grad.abs().mean():.4g}")


if __name__ == "__main__":
    main()
