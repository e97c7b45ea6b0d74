"""Evaluation with random streams of its own, so that evaluating never changes training.

The env runner, the learner and the evaluation env runner that live in the algorithm's own
process (``num_env_runners=0``, ``num_learners=0``, ``evaluation_num_env_runners=0``: the
main job's and the tests' settings) share the process's global generators: Python's
``random``, numpy's global state and torch's default generator. RLlib's evaluation explores
unless ``evaluation_config`` sets ``explore=False`` (it calls ``forward_exploration``), so each
evaluation advanced the generators that the training env runner's exploration and the learner
draw from: with the same seed, MP-DQN evaluated every iteration and every 4th iteration held
different weights after 200 env steps (up to 0.059 apart).

:class:`SeparateEvaluationRandomness` runs every evaluation on a stream of its own, seeded
with ``seed + 1_000_000`` (RLlib's offset for evaluation env runners) and continued from one
evaluation to the next, and gives the training stream back untouched afterwards. Remote
evaluation env runners are separate processes and were never affected; with
``evaluation_parallel_to_training`` the streams are left alone (training runs in another
thread meanwhile, and swapping process-wide state under it would be worse).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

#: Offset of the evaluation stream's seed from ``config.seed`` (RLlib seeds its evaluation env
#: runners with the same offset).
EVALUATION_SEED_OFFSET = 1_000_000


def global_random_states() -> dict[str, Any]:
    """The states of Python's, numpy's and torch's global generators (CUDA's too, if any)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_global_random_states(states: dict[str, Any]) -> None:
    """Puts back states from :func:`global_random_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


def seeded_random_states(seed: int) -> dict[str, Any]:
    """The global generators' states after seeding them all with ``seed``; the generators
    themselves are left as they were."""
    current = global_random_states()
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return global_random_states()
    finally:
        set_global_random_states(current)


class SeparateEvaluationRandomness:
    """Mixin for an ``Algorithm`` (listed before it): ``evaluate()`` draws from its own random
    stream and leaves the training stream as it found it (see the module docstring)."""

    _evaluation_random_states: dict[str, Any] | None = None

    def evaluate(self, *args, **kwargs):
        if self.config.evaluation_parallel_to_training:
            return super().evaluate(*args, **kwargs)
        training = global_random_states()
        if self._evaluation_random_states is None:
            seed = self.config.seed
            # Without a seed there is nothing to reproduce: start from a copy of the training
            # stream (which is then given back as it was).
            self._evaluation_random_states = (
                training if seed is None else seeded_random_states(seed + EVALUATION_SEED_OFFSET))
        set_global_random_states(self._evaluation_random_states)
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self._evaluation_random_states = global_random_states()
            set_global_random_states(training)
