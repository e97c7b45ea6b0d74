"""Exploration and inference forwards without RLlib's per-call mode switch, for env runners.

RLlib's ``TorchRLModule.forward_exploration`` and ``forward_inference`` put the module in eval
mode before every call and back in train mode after it: two walks over every submodule per
forward, on the env runner once per env step (at ``rollout_fragment_length=1`` with one env,
a visible part of a step: benchmarks/RESULTS.md, "In process: the runner on the learner's
tensors, no mode switch, stats once per call"). An inference-only module (the env runners'
copy) never trains, so the first such forward leaves it in eval mode for good and the next
ones skip the switch. A full module (a learner's, or one a user built and calls) keeps RLlib's
switch and restore.
"""

from __future__ import annotations


class EvalModeForwards:
    """Mixin for a ``TorchRLModule`` (listed before it): see the module docstring. Once in eval
    mode, a forward does exactly what RLlib's does then (its ``eval()`` would change nothing
    and it restores nothing)."""

    def forward_exploration(self, batch, **kwargs):
        if self.training:
            if not self.inference_only:
                return super().forward_exploration(batch, **kwargs)
            self.eval()
        return self._forward_exploration(batch, **kwargs)

    def forward_inference(self, batch, **kwargs):
        if self.training:
            if not self.inference_only:
                return super().forward_inference(batch, **kwargs)
            self.eval()
        return self._forward_inference(batch, **kwargs)
