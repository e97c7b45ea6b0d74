"""Bytes per stored transition of the plugin's replays against the minimum (issue 29 §4): the
observation, the action, the reward and the done flag as float32, once per transition.

Builds each algorithm's replay exactly as the algorithm does (columns, dtypes, the
prioritised sum/min tree) at the capacity a long run uses, and divides the bytes it allocates
by the capacity. Nothing is trained. Run:
    .venv/bin/python benchmarks/replay_bytes.py [--capacity 1000000]
"""

from __future__ import annotations

import argparse

import numpy as np


def replay_bytes(replay) -> int:
    """Bytes a replay allocates: its columns and, if prioritised, its tree."""
    total = sum(column.nbytes for column in replay.columns.values())
    if replay._tree is not None:
        total += replay._tree.sums.nbytes + replay._tree.mins.nbytes
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capacity", type=int, default=1_000_000)
    args = p.parse_args()

    from ray.rllib.core.columns import Columns

    import rllib_ext  # noqa: F401  (registers the envs)
    from rllib_ext.core.parameterised.action_layout import layout_from_space
    from rllib_ext.core.parameterised.parameterised_replay import ParameterisedReplay
    from rllib_ext.core.replay import TransitionReplay
    from rllib_ext.envs import make

    rows = []
    # The P-DQN family on Moving (replay_capacity 1M in configs/pdqn/moving_dien.yaml).
    env = make("rllib_ext/Moving-v0")
    layout = layout_from_space(env.action_space, [1, 1, 0])
    obs_dim = int(np.prod(env.observation_space.shape))
    replay = ParameterisedReplay(args.capacity, obs_dim, layout)
    rows.append(("MP-DQN, Moving-v0", replay, obs_dim + 1 + layout.total_params))
    # ACE's replay: uniform in the MuJoCo configs (configs/ace/hopper.yaml,
    # halfcheetah_300k.yaml: 1M), prioritised (alpha 0.6, ACE's default) with its sum/min tree.
    for name, obs_dim, action_dim, alpha in (("ACE, Hopper-v5, uniform", 11, 3, 0.0),
                                             ("ACE, HalfCheetah-v5, uniform", 17, 6, 0.0),
                                             ("ACE, HalfCheetah-v5, prioritised", 17, 6, 0.6)):
        replay = TransitionReplay(args.capacity, {
            Columns.OBS: ((obs_dim,), np.float32), Columns.NEXT_OBS: ((obs_dim,), np.float32),
            Columns.ACTIONS: ((action_dim,), np.float32), Columns.REWARDS: ((), np.float32),
            Columns.TERMINATEDS: ((), np.float32)}, alpha=alpha)
        rows.append((name, replay, obs_dim + action_dim))

    print(f"capacity {args.capacity:,} transitions")
    print(f"{'replay':<34} {'bytes / transition':>19} {'minimum':>8} {'ratio':>6}  "
          "largest columns")
    for name, replay, floats in rows:
        per_row = replay_bytes(replay) / args.capacity
        minimum = 4 * (floats + 2)  # + reward + done flag
        columns = sorted(((c.nbytes / args.capacity, k) for k, c in replay.columns.items()),
                         reverse=True)[:3]
        print(f"{name:<34} {per_row:>19.1f} {minimum:>8d} {per_row / minimum:>5.2f}x  "
              + ", ".join(f"{k} {b:.0f} B" for b, k in columns))


if __name__ == "__main__":
    main()
