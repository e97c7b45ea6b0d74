"""The env runner's action bounds (``normalize_actions`` / ``clip_actions``) at the cost of one
numpy operation per batch.

RLlib's module-to-env pipeline ends with ``NormalizeAndClipActions``, which deep-copies every
sub-env's action and unsquashes or clips it one item at a time, after the batch was split per
episode. On H-PPO's Moving config (8 envs, a Tuple action) that was 11 % of a training
iteration; on a Discrete action space (PG on CartPole) it changes nothing, yet cost 8 %
(cProfile; ``benchmarks/on_policy_plain.py``, RESULTS.md).

:func:`lean_action_bounds` rewrites a config's default pipeline:

* no Box anywhere in the action space: the piece is dropped (unsquash and clip leave Discrete
  and MultiDiscrete actions as they are);
* a single-agent pipeline without user connectors: the piece moves in front of
  ``UnBatchToIndividualItems`` as :class:`BatchedNormalizeAndClipActions`, which bounds the
  whole (B, ...) action batch at once with RLlib's own ``unsquash_action`` / ``clip_action``
  (they broadcast over the batch dimension). The env receives the same numbers.

Multi-agent pipelines and pipelines with the user's module-to-env connectors (which RLlib runs
*before* the bounds) keep RLlib's piece where it is.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.connectors.module_to_env import NormalizeAndClipActions
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override
from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

from rllib_ext.core.spaces import has_box


class BatchedNormalizeAndClipActions(NormalizeAndClipActions):
    """RLlib's ``NormalizeAndClipActions`` applied to the batched single-agent actions (module
    docstring): ``ACTIONS_FOR_ENV`` = the bounded copy of ``ACTIONS``, which keeps the sample
    the losses see."""

    @override(NormalizeAndClipActions)
    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None,
                 shared_data=None, **kwargs) -> Any:
        if self.normalize_actions:
            batch[Columns.ACTIONS_FOR_ENV] = unsquash_action(batch[Columns.ACTIONS],
                                                             self._action_space_struct)
        elif self.clip_actions:
            batch[Columns.ACTIONS_FOR_ENV] = clip_action(batch[Columns.ACTIONS],
                                                         self._action_space_struct)
        return batch


def lean_action_bounds(config, pipeline):
    """``pipeline`` (the config's module-to-env pipeline) with the bounds rewritten as the
    module docstring says; returns it."""
    if not any(isinstance(c, NormalizeAndClipActions) for c in pipeline.connectors):
        return pipeline  # add_default_connectors_to_module_to_env_pipeline=False
    if not has_box(pipeline.input_action_space):
        pipeline.remove(NormalizeAndClipActions)
    elif not config.is_multi_agent and config._module_to_env_connector is None:
        pipeline.remove(NormalizeAndClipActions)
        pipeline.insert_after("TensorToNumpy", BatchedNormalizeAndClipActions(
            normalize_actions=config.normalize_actions, clip_actions=config.clip_actions))
    return pipeline
