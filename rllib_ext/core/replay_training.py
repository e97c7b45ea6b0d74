"""The off-policy training step shared by the parameterised-action algorithms and ACE.

One ``training_step``: sample ``rollout_fragment_length`` steps per env from the env runners,
store the transitions in the algorithm's flat replay (:mod:`rllib_ext.core.replay`),
then take ``updates_per_env_step`` x (new env steps) gradient steps of
``train_batch_size_per_learner`` transitions each in one ``learner_group.update`` call (the
learners cut it, :mod:`rllib_ext.core.chunked_learner`), and sync the weights.
RLlib's EnvRunners, LearnerGroup (several learners too), metrics, checkpoints, evaluation and
Tune work unchanged. The algorithm supplies ``self.replay`` and :meth:`store_episodes`; with
``store_replay_in_checkpoint`` the replay's contents are part of the algorithm's state
(checkpoints) under :data:`REPLAY_STATE_KEY`.
"""

from __future__ import annotations

from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
    WEIGHTS_SEQ_NO,
)

from rllib_ext.core.env_runner_faults import sample_env_runners
from rllib_ext.core.rllib_compat import wants_component

#: Metric key of the replay's size.
REPLAY_SIZE_KEY = "replay_size"
#: Algorithm-state key of the replay's contents (only with ``store_replay_in_checkpoint``).
REPLAY_STATE_KEY = "replay"


class ReplayTrainingStep:
    """Mixin for an ``Algorithm`` with a flat ``self.replay``: the pieces of the off-policy
    ``training_step`` (see the module docstring), each timed under RLlib's timer keys."""

    _update_credit: float = 0.0  # fractional gradient steps owed (updates_per_env_step)

    def store_episodes(self, episodes) -> int:
        """Stores the sampled episode chunks' new steps; returns how many."""
        raise NotImplementedError

    def sample_into_replay(self) -> int:
        """One synchronous sampling round from the env runners into the replay; returns the
        number of new env steps. Lost env runners raise or are replaced
        (:func:`~rllib_ext.core.env_runner_faults.sample_env_runners`)."""
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = sample_env_runners(self)
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            new_steps = self.store_episodes(episodes)
        self.metrics.log_value(REPLAY_SIZE_KEY, getattr(self.replay, "total_size",
                                                        len(self.replay)), window=1)
        return new_steps

    def owed_updates(self, new_steps: int) -> int:
        """Gradient steps due for ``new_steps`` sampled steps (``updates_per_env_step``,
        fractions carried over); none before the replay holds
        ``num_steps_sampled_before_learning_starts`` transitions. Counted on the replay, not the
        lifetime steps: unless ``store_replay_in_checkpoint``, the replay is not checkpointed,
        so a restored algorithm refills it before learning again."""
        cfg = self.config
        if len(self.replay) < cfg.num_steps_sampled_before_learning_starts:
            return 0
        self._update_credit += new_steps * cfg.updates_per_env_step
        num_updates = int(self._update_credit)
        self._update_credit -= num_updates
        return num_updates

    @override(Checkpointable)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        """The algorithm's state plus, with ``store_replay_in_checkpoint``, the replay's
        contents (:meth:`~rllib_ext.core.replay.TransitionReplay.get_state`)."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self.config.store_replay_in_checkpoint and wants_component(self,
                REPLAY_STATE_KEY, components, not_components):
            state[REPLAY_STATE_KEY] = self.replay.get_state()
        return state

    @override(Checkpointable)
    def set_state(self, state) -> None:
        """Restores the algorithm's state and the replay's contents, if the state has them
        (a checkpoint saved with ``store_replay_in_checkpoint``)."""
        super().set_state(state)
        if REPLAY_STATE_KEY in state:
            self.replay.set_state(state[REPLAY_STATE_KEY])

    def learn_on(self, data: dict, timesteps: dict) -> list[dict]:
        """All rows of ``data`` (``{module_id: columns}``) as one RLlib minibatch: the learners
        cut it into consecutive ``train_batch_size_per_learner`` batches, one gradient step
        each (every module's rows side by side), so RLlib's per-minibatch slicing and logging
        run once per ``training_step``."""
        rows = max(len(next(iter(columns.values()))) for columns in data.values())
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=MultiAgentBatch({module_id: SampleBatch(columns)
                                       for module_id, columns in data.items()}, env_steps=rows),
                minibatch_size=None, num_epochs=1, shuffle_batch_per_epoch=False,
                timesteps=timesteps)
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        return learner_results

    def sync_runner_weights(self, learner_results: list[dict]) -> None:
        """The trained modules' inference weights to every env runner.

        With the local env runner alone (``num_env_runners=0``) and a local learner, the state
        goes straight from the learner to the runner: RLlib's ``sync_weights`` would also
        ``ray.put`` it for remote runners that do not exist, about half the sync's time at one
        gradient step per env step (benchmarks/time_breakdown.py). The runner gets the same
        state either way."""
        policies = set(learner_results[0].keys()) - {ALL_MODULES}
        group = self.env_runner_group
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            if group.num_remote_env_runners() == 0 and self.learner_group.is_local \
                    and group.local_env_runner is not None:
                state = self.learner_group.get_state(
                    components=[f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{p}"
                                for p in policies],
                    inference_only=True)[COMPONENT_LEARNER]
                group.local_env_runner.set_state(
                    {k: v for k, v in state.items() if k in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO)})
                return
            group.sync_weights(from_worker_or_learner_group=self.learner_group,
                               policies=policies, inference_only=True)
