"""Per-module state of the off-policy algorithms, single- and multi-agent alike: one replay
(ACE: also one causal state) per trained RL module. Single-agent there is one module,
``"default_policy"``.

- :func:`trained_module_ids`: the modules the learners train (``policies_to_train``).
- :func:`module_chunks`: sampled episode chunks cut into ``(module_id, single-agent chunk)``
  pairs (``MultiAgentEpisode.module_for``), skipping modules not trained.
- :class:`PerModule`: ``{module_id: object}`` whose checkpoint state is the one object's state
  when there is one module (so single-agent checkpoints keep their layout) and which, with one
  module, reads attributes through to it (``algo.causal.weights``).
- :class:`ModuleReplays`: a :class:`PerModule` of replays with the sizes the training step asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from ray.rllib.env import INPUT_ENV_SINGLE_SPACES, INPUT_ENV_SPACES


def trained_module_ids(module_ids: Iterable[str], policies_to_train) -> list[str]:
    """The modules of ``module_ids`` (in their order) the learners train:
    ``config.policies_to_train`` (None: all; a collection of ids; or RLlib's callable
    ``(module_id, batch) -> bool``)."""
    module_ids = [m for m in module_ids if m not in (INPUT_ENV_SPACES, INPUT_ENV_SINGLE_SPACES)]
    if policies_to_train is None:
        return module_ids
    if callable(policies_to_train):
        return [m for m in module_ids if policies_to_train(m, None)]
    return [m for m in module_ids if m in set(policies_to_train)]


def module_chunks(episodes, module_ids: Iterable[str]) -> tuple[list[tuple[str, object]], int]:
    """``([(module_id, single-agent chunk), ...], env steps)`` of sampled episode chunks.

    A ``MultiAgentEpisode`` is split into its agents' chunks, each labelled with the module
    its agent maps to; chunks of modules not in ``module_ids`` (not trained) are dropped. A
    single-agent chunk belongs to the one module of ``module_ids``. The env steps count each
    env step once, however many agents acted in it."""
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    module_ids = list(module_ids)
    wanted = set(module_ids)
    chunks, env_steps = [], 0
    for episode in episodes:
        if isinstance(episode, MultiAgentEpisode):
            for agent_id, agent_episode in episode.agent_episodes.items():
                module_id = episode.module_for(agent_id)
                if module_id in wanted and len(agent_episode) > 0:
                    chunks.append((module_id, agent_episode))
            env_steps += episode.env_steps()
        else:
            (module_id,) = module_ids
            if len(episode) > 0:
                chunks.append((module_id, episode))
            env_steps += len(episode)
    return chunks, env_steps


class PerModule:
    """``{module_id: item}`` (see the module docstring): ``per_module[module_id]`` picks one
    (``by_module`` is the dict); with a single module, attribute reads go to it."""

    def __init__(self, items: dict):
        self.by_module = dict(items)

    def __getitem__(self, module_id: str):
        return self.by_module[module_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_module)

    def __contains__(self, module_id) -> bool:
        return module_id in self.by_module

    def __getattr__(self, name: str):
        by_module = self.__dict__.get("by_module", {})
        if len(by_module) == 1:
            return getattr(next(iter(by_module.values())), name)
        raise AttributeError(f"{name!r}: with several modules pick one first, "
                             f"[module_id] (modules {sorted(by_module)}).")

    @property
    def single(self) -> bool:
        """One module (single-agent, or one policy)."""
        return len(self.by_module) == 1

    def get_state(self) -> dict:
        """The one item's state (one module), else ``{module_id: state}``."""
        if self.single:
            return next(iter(self.by_module.values())).get_state()
        return {module_id: item.get_state() for module_id, item in self.by_module.items()}

    def set_state(self, state: dict) -> None:
        """Restores what :meth:`get_state` returned (modules absent from ``state`` keep
        theirs)."""
        if self.single:
            next(iter(self.by_module.values())).set_state(state)
            return
        for module_id, item in self.by_module.items():
            if module_id in state:
                item.set_state(state[module_id])


class ModuleReplays(PerModule):
    """One replay per trained module. Learning starts once *every* trained module's replay
    holds a batch's worth (``len`` is the smallest replay), so no module trains on a handful
    of transitions repeated."""

    @property
    def replays(self) -> dict:
        """``{module_id: replay}``."""
        return self.by_module

    def __len__(self) -> int:
        return min(len(replay) for replay in self.by_module.values())

    @property
    def total_size(self) -> int:
        """Transitions stored over all modules."""
        return sum(len(replay) for replay in self.by_module.values())

    def sample_modules(self, n: int) -> dict[str, dict[str, np.ndarray]]:
        """``{module_id: n uniformly drawn transitions}`` from every module's replay."""
        return {module_id: replay.sample(n) for module_id, replay in self.by_module.items()}
