"""What the off-policy learners (P-DQN family, PA-DDPG, ACE) share: many gradient steps
per ``learner_group.update`` call, and gradient averaging over several learners without DDP.

The algorithms hand over all the rows one ``training_step`` trains on (``num_updates``
batches) as a single RLlib minibatch, so RLlib converts, slices and logs that data once per
``training_step`` rather than once per gradient step; the learner cuts it into consecutive
``train_batch_size_per_learner`` batches, one gradient step each. The per-step stats (window 1:
only the latest value of a key is ever reported) reach RLlib's ``MetricsLogger`` once per call,
the latest value of each key, instead of once per step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override


class ChunkedUpdateTorchLearner(TorchLearner):
    """Overrides ``TorchLearner._update`` (one RLlib minibatch): one ``_uncompiled_update``
    per ``train_batch_size_per_learner`` rows, in order, on tensor views (no copy) — the same
    gradient steps as that many minibatches would give. A last, shorter chunk (rows not a
    multiple of the batch size) is trained on as it is.

    :meth:`log_step_stats` keeps each gradient step's stats until the call ends, then logs the
    latest value of every key (window 1), what logging them at every step would leave for
    the next reduce, with one pass of the logger's per-key work per call instead of per step
    (benchmarks/RESULTS.md, "In process: the runner on the learner's tensors, ...")."""

    _step_stats: dict | None = None

    @override(TorchLearner)
    def _update(self, batch):
        size = self.config.train_batch_size_per_learner
        rows = max(len(module_batch) for module_batch in batch.values())
        self._step_stats = {}
        try:
            for start in range(0, rows, size):
                out = super()._update({
                    module_id: {key: column[start:start + size]
                                for key, column in module_batch.items()}
                    for module_id, module_batch in batch.items()
                })
        finally:
            for module_id, stats in self._step_stats.items():
                self.metrics.log_dict(stats, key=module_id, window=1)
            self._step_stats = None
        return out

    def log_step_stats(self, module_id, stats: dict) -> None:
        """One gradient step's stats of ``module_id`` (window 1), logged when the update call
        ends (the latest value of each key); at once outside an update call."""
        if self._step_stats is None:
            self.metrics.log_dict(stats, key=module_id, window=1)
        else:
            self._step_stats.setdefault(module_id, {}).update(stats)


def average_over_learners(grads: dict) -> None:
    """Averages the (non-None) gradient tensors in place over all learner processes with one
    ``all_reduce``; a no-op with a single learner.

    RLlib's DDP wrapper only syncs a backward that follows a DDP ``forward``, once per
    forward; these learners run several backwards per forward pass, or skip networks on
    some steps (ACE's delayed policy), so they call the unwrapped networks and average here
    (DDP still broadcasts the initial weights).
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    tensors = [g for g in grads.values() if g is not None]
    flat = torch.cat([g.reshape(-1) for g in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, averaged in zip(tensors, flat.split([g.numel() for g in tensors]), strict=True):
        g.copy_(averaged.view_as(g))
