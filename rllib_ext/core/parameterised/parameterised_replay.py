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
        num_params: P, the size of all K actions' parameters together.
        extra_columns: ``{key: width}`` of per-step ``extra_model_outputs`` to keep (float32).
        seed: Seed of the sampling RNG.
    """

    def __init__(self, capacity: int, obs_dim: int, num_params: int, *,
                 extra_columns: dict[str, int] | None = None, seed=None):
        self.extra_columns = dict(extra_columns or {})
        super().__init__(capacity, {
            Columns.OBS: ((obs_dim,), np.float32),
            Columns.NEXT_OBS: ((obs_dim,), np.float32),
            ACTION_INDEX: ((), np.int64),
            ACTION_PARAMS: ((num_params,), np.float32),
            Columns.REWARDS: ((), np.float32),
            Columns.TERMINATEDS: ((), np.float32),
            **{key: ((width,), np.float32) for key, width in self.extra_columns.items()},
        }, seed=seed)

    def add_episodes(self, episodes, layout: ActionLayout) -> int:
        """Cuts every step of the (possibly partial) episodes into transitions; returns n."""
        added = 0
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


class ModuleReplays:
    """One :class:`ParameterisedReplay` per trained RL module: the replay of the parameterised
    algorithms, single- and multi-agent alike (single-agent: the one module
    ``"default_policy"``).

    Multi-agent episode chunks are split into their agents' single-agent chunks, and each goes
    to the replay of the module its agent maps to (``MultiAgentEpisode.module_for``); agents of
    modules not trained (``policies_to_train``) are skipped. Learning starts once *every*
    trained module's replay holds a batch's worth (``len`` is the smallest replay), so no
    module trains on a handful of transitions repeated.

    Args:
        replays: ``{module_id: replay}``.
        layouts: ``{module_id: the module's action layout}``.
    """

    def __init__(self, replays: dict[str, ParameterisedReplay], layouts: dict[str, ActionLayout]):
        self.replays, self.layouts = dict(replays), dict(layouts)

    def __len__(self) -> int:
        return min(len(replay) for replay in self.replays.values())

    def __getitem__(self, module_id: str) -> ParameterisedReplay:
        return self.replays[module_id]

    @property
    def total_size(self) -> int:
        """Transitions stored over all modules."""
        return sum(len(replay) for replay in self.replays.values())

    def add_episodes(self, episodes) -> int:
        """Stores every new step of single- or multi-agent episode chunks; returns the number
        of env steps (not agent steps) they hold."""
        from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

        env_steps = 0
        for episode in episodes:
            if isinstance(episode, MultiAgentEpisode):
                for agent_id, agent_episode in episode.agent_episodes.items():
                    module_id = episode.module_for(agent_id)
                    if module_id in self.replays:
                        self.replays[module_id].add_episodes([agent_episode],
                                                             self.layouts[module_id])
                env_steps += episode.env_steps()
            else:
                (module_id,) = self.replays
                env_steps += self.replays[module_id].add_episodes([episode],
                                                                  self.layouts[module_id])
        return env_steps

    def __getattr__(self, name: str):
        replays = self.__dict__.get("replays", {})
        if len(replays) == 1:
            return getattr(next(iter(replays.values())), name)
        raise AttributeError(f"{name!r}: with several modules pick one replay first, "
                             f"replay[module_id] (modules {sorted(replays)}).")

    def sample_modules(self, n: int) -> dict[str, dict[str, np.ndarray]]:
        """``{module_id: n uniformly drawn transitions}`` from every module's replay."""
        return {module_id: replay.sample(n) for module_id, replay in self.replays.items()}

    def get_state(self) -> dict:
        """The one replay's state (single module), else ``{module_id: state}``."""
        if len(self.replays) == 1:
            return next(iter(self.replays.values())).get_state()
        return {module_id: replay.get_state() for module_id, replay in self.replays.items()}

    def set_state(self, state: dict) -> None:
        """Restores what :meth:`get_state` returned."""
        if len(self.replays) == 1:
            next(iter(self.replays.values())).set_state(state)
            return
        for module_id, replay in self.replays.items():
            if module_id in state:
                replay.set_state(state[module_id])
