"""Does a SAC/ACE critic still depend on the action? A post-mortem for stalled runs.

RLlib 2.60's SAC Q-encoder (ACE's with ``q_network="multi_stream"``; its default "concat"
critics feed (s, a) into one MLP and have no action stream) is a multi-stream encoder: the
action goes through
its own MLP stream (``fcnet_hiddens``, ``fcnet_activation``) before it is fused with the
observation stream. With ReLU, every unit of that stream's last layer can die; then Q(s, a) no
longer depends on a, the policy gradient through Q is exactly zero and the policy stays at its
maximum-entropy initialisation for good (measured on Pendulum-v1, seed 2, with ACE and SAC).

Run on an experiment, trial or checkpoint directory:

    python -m rllib_ext.algorithms.ace.diagnostics tune_runs/<experiment> [--env Pendulum-v1]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core.columns import Columns

#: The critics' encoders of RLlib's SAC module (and so of ACE's).
CRITIC_ENCODERS = ("qf_encoder", "qf_twin_encoder")


def live_action_units(module, grid_points: int = 21) -> dict[str, tuple[int, int]]:
    """Per multi-stream critic: (units of the action stream's last layer that are > 0 for some
    action on a grid over the normalised action box [-1, 1]^A, all units); critics without an
    action stream are left out."""
    dim = module.action_space.shape[0]
    axis = torch.linspace(-1.0, 1.0, grid_points if dim <= 2 else 5)
    grid = torch.tensor(list(itertools.product(axis.tolist(), repeat=dim)), dtype=torch.float32)
    live = {}
    with torch.no_grad():
        for name in CRITIC_ENCODERS:
            encoder = getattr(module, name, None)
            if encoder is None or not hasattr(encoder, "base_encoders"):
                continue
            out = next(iter(encoder.base_encoders["actions"]({Columns.OBS: grid}).values()))
            live[name] = (int((out > 0).any(0).sum()), out.shape[-1])
    return live


def mean_abs_dq_da(module, obs: torch.Tensor) -> float:
    """Mean |d min(Q1, Q2)(s, a) / da| at uniform random actions in [-1, 1]^A."""
    actions = torch.empty(len(obs), module.action_space.shape[0]).uniform_(-1, 1)
    actions.requires_grad_(True)
    q = module.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: actions})
    (grad,) = torch.autograd.grad(q.sum(), actions)
    return float(grad.abs().mean())


def main(argv: list[str] | None = None) -> None:
    import gymnasium as gym
    from ray.rllib.core.rl_module.rl_module import RLModule

    import rllib_ext

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--env", default="Pendulum-v1", help="env to sample observations from")
    parser.add_argument("--obs", type=int, default=256, help="observations sampled from the env")
    args = parser.parse_args(argv)
    rllib_ext.register()
    space = gym.make(args.env).observation_space
    obs = torch.tensor(np.stack([space.sample() for _ in range(args.obs)]), dtype=torch.float32)
    paths = [p for p in sorted(Path(args.run_dir).resolve().rglob(
        "learner_group/learner/rl_module/*")) if p.is_dir()]
    if not paths:
        raise SystemExit(f"no checkpoint with a learner RL module under {args.run_dir}")
    for path in paths:
        module = RLModule.from_checkpoint(str(path))
        live = ", ".join(f"{n}: {a}/{b} live" for n, (a, b) in live_action_units(module).items())
        live = live or "none (no separate action stream)"
        print(f"{path.parents[3]}: action-stream units {live}; "
              f"mean |dQ/da| = {mean_abs_dq_da(module, obs):.4g}")


if __name__ == "__main__":
    main()
