"""A lean transition replay for parameterised actions: flat numpy ring buffers, uniform sampling.

RLlib's episode replay buffers rebuild episodes and run the learner connector for every
sample, which costs more than P-DQN's or PA-DDPG's tiny update. Here transitions are cut out of the
sampled episodes once, stored column-wise, and sampled with one fancy-index per column.
Every step stores *all* K actions' parameters (as the reference does), plus any per-step
module outputs an algorithm asks for (PA-DDPG: the K action scores).
"""

from __future__ import annotations

import numpy as np
import tree
from ray.rllib.core.columns import Columns

from rllib_ext.algorithms.parameterised.action_layout import ActionLayout
from rllib_ext.algorithms.parameterised.parameterised_learner import ACTION_INDEX, ACTION_PARAMS


class TransitionReplay:
    """Column-wise ring buffer of transitions.

    Args:
        capacity: Transitions kept; the oldest are overwritten.
        obs_dim: Size of the flat observation.
        num_params: P, the size of all K actions' parameters together.
        extra_columns: ``{key: width}`` of per-step ``extra_model_outputs`` to keep (float32).
        seed: Seed of the sampling RNG.
    """

    def __init__(self, capacity: int, obs_dim: int, num_params: int, *,
                 extra_columns: dict[str, int] | None = None, seed=None):
        self.capacity = int(capacity)
        self.extra_columns = dict(extra_columns or {})
        self.columns = {
            Columns.OBS: np.zeros((capacity, obs_dim), np.float32),
            Columns.NEXT_OBS: np.zeros((capacity, obs_dim), np.float32),
            ACTION_INDEX: np.zeros(capacity, np.int64),
            ACTION_PARAMS: np.zeros((capacity, num_params), np.float32),
            Columns.REWARDS: np.zeros(capacity, np.float32),
            Columns.TERMINATEDS: np.zeros(capacity, np.float32),
        }
        for key, width in self.extra_columns.items():
            self.columns[key] = np.zeros((capacity, width), np.float32)
        self.size = 0
        self._next = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, **columns: np.ndarray) -> None:
        """Appends n transitions given column-wise (every column has n rows)."""
        n = len(columns[Columns.REWARDS])
        if n == 0:
            return
        idx = (self._next + np.arange(n)) % self.capacity
        for key, values in columns.items():
            self.columns[key][idx] = values
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def add_episodes(self, episodes, layout: ActionLayout) -> int:
        """Cuts every step of the (possibly partial) episodes into transitions; returns n.

        The last step of an episode is terminal only if the env *terminated* it; a truncated
        (time-limited) or still running chunk bootstraps from its next observation.
        """
        added = 0
        for ep in episodes:
            steps = len(ep)
            if steps == 0:
                continue
            obs = np.asarray(ep.get_observations(), np.float32).reshape(steps + 1, -1)
            leaves = tree.flatten(ep.get_actions())
            params = (np.concatenate([np.asarray(v, np.float32).reshape(steps, -1)
                                      for v in leaves[1:]], axis=1)
                      if layout.total_params else np.zeros((steps, 0), np.float32))
            terminated = np.zeros(steps, np.float32)
            terminated[-1] = float(ep.is_terminated)
            extras = {key: np.asarray(ep.get_extra_model_outputs(key), np.float32)
                      .reshape(steps, width) for key, width in self.extra_columns.items()}
            self.add(**extras, **{
                Columns.OBS: obs[:-1],
                Columns.NEXT_OBS: obs[1:],
                ACTION_INDEX: np.asarray(leaves[0]).reshape(steps),
                ACTION_PARAMS: params,
                Columns.REWARDS: np.asarray(ep.get_rewards(), np.float32),
                Columns.TERMINATEDS: terminated,
            })
            added += steps
        return added

    def sample(self, n: int) -> dict[str, np.ndarray]:
        """n transitions drawn uniformly with replacement (as the reference)."""
        idx = self._rng.integers(0, self.size, size=n)
        return {key: values[idx] for key, values in self.columns.items()}
