"""The parameterised-action replay: the shared flat :class:`~rllib_ext.core.replay.
TransitionReplay` (uniform sampling, as the reference) with the action stored as the discrete
index plus *all* K actions' parameters (as the reference does), plus any per-step module
outputs an algorithm asks for (PA-DDPG: the K action scores)."""

from __future__ import annotations

import numpy as np
import tree
from ray.rllib.core.columns import Columns

from rllib_ext.core.parameterised.action_layout import ActionLayout
from rllib_ext.core.parameterised.parameterised_learner import ACTION_INDEX, ACTION_PARAMS
from rllib_ext.core.replay import TransitionReplay, episode_transitions


class ParameterisedReplay(TransitionReplay):
    """Column-wise ring buffer of parameterised-action transitions, sampled uniformly.

    Args:
        capacity: Transitions kept; the oldest are overwritten.
        obs_dim: Size of the flat observation.
        layout: The action space's layout (K actions, their parameter sizes).
        extra_columns: ``{key: width}`` of per-step ``extra_model_outputs`` to keep (float32).
        seed: Seed of the sampling RNG.
    """

    def __init__(self, capacity: int, obs_dim: int, layout: ActionLayout, *,
                 extra_columns: dict[str, int] | None = None, seed=None):
        self.layout = layout
        self.extra_columns = dict(extra_columns or {})
        super().__init__(capacity, {
            Columns.OBS: ((obs_dim,), np.float32),
            Columns.NEXT_OBS: ((obs_dim,), np.float32),
            ACTION_INDEX: ((), np.int64),
            ACTION_PARAMS: ((layout.total_params,), np.float32),
            Columns.REWARDS: ((), np.float32),
            Columns.TERMINATEDS: ((), np.float32),
            **{key: ((width,), np.float32) for key, width in self.extra_columns.items()},
        }, seed=seed)

    def add_episodes(self, episodes) -> int:
        """Cuts every step of the (possibly partial) single-agent episode chunks into
        transitions; returns n."""
        layout, added = self.layout, 0
        for ep in episodes:
            steps = len(ep)
            if steps == 0:
                continue
            leaves = tree.flatten(ep.get_actions())
            params = (np.concatenate([np.asarray(v, np.float32).reshape(steps, -1)
                                      for v in leaves[1:]], axis=1)
                      if layout.total_params else np.zeros((steps, 0), np.float32))
            extras = {key: np.asarray(ep.get_extra_model_outputs(key), np.float32)
                      .reshape(steps, width) for key, width in self.extra_columns.items()}
            self.add(**extras, **episode_transitions(ep), **{
                ACTION_INDEX: np.asarray(leaves[0]).reshape(steps),
                ACTION_PARAMS: params,
            })
            added += steps
        return added
