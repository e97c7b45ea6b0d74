"""The off-policy training step shared by the parameterised-action algorithms and ACE.

One *cycle*: sample ``rollout_fragment_length`` steps per env from the env runners,
store the transitions in the algorithm's flat replay (:mod:`rllib_ext.core.replay`),
then take ``updates_per_env_step`` x (new env steps) gradient steps of
``train_batch_size_per_learner`` transitions each in one ``learner_group.update`` call (the
learners cut it, :mod:`rllib_ext.core.chunked_learner`), and sync the weights.

With remote env runners or learners a ``training_step`` is one cycle. When the env runner and
the learner both run in the algorithm's process (``num_env_runners=0``, ``num_learners=0``:
the reference's setting, one update per env step), a ``training_step`` runs cycles until it
sampled ``min_sample_timesteps_per_iteration`` env steps, and the env runner's and the
learner's metrics are reduced once at its end instead of once per cycle (RLlib's per-call
``MetricsLogger.reduce`` is a large share of a cycle at fragment 1: benchmarks/RESULTS.md,
"Where an env step's time goes"). The cycles are the same: the same samples, updates, ε and
weights, step for step (benchmarks/same_trajectory.py); only the metrics bookkeeping moves.
RLlib's EnvRunners, LearnerGroup (several learners too), metrics, checkpoints, evaluation and
Tune work unchanged. The algorithm supplies ``self.replay`` and :meth:`store_episodes`; with
``store_replay_in_checkpoint`` the replay's contents are part of the algorithm's state
(checkpoints) under :data:`REPLAY_STATE_KEY`.
"""

from __future__ import annotations

from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
    WEIGHTS_SEQ_NO,
)

from rllib_ext.core.env_runner_faults import sample_env_runners
from rllib_ext.core.rllib_compat import (
    LEARNER_UPDATE_WITHOUT_REDUCE,
    alias_module_tensors,
    local_learner,
    set_env_runner_weights_seq_no,
    wants_component,
    weights_seq_no,
)

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

    def runs_in_process(self) -> bool:
        """The env runner and the learner both live in this process (no remote ones)."""
        group = self.env_runner_group
        return (group.num_remote_env_runners() == 0 and group.local_env_runner is not None
                and self.learner_group.is_local)

    def lifetime_counts(self) -> dict:
        """RLlib's lifetime env steps and episodes sampled, as the metrics hold them now."""
        return {key: self.metrics.peek((ENV_RUNNER_RESULTS, key), default=0)
                for key in (NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_EPISODES_LIFETIME)}

    def learn_cycles(self, learn) -> None:
        """The sampling-and-learning cycles of one ``training_step`` (module docstring).

        ``learn(new_steps, counts, reduce)`` takes a cycle's gradient steps on the replay
        (the cycle stored its new steps already) and syncs the weights; ``counts`` are the
        lifetime counts after the cycle (as :meth:`lifetime_counts`), ``reduce`` whether the
        learners may reduce their metrics at once (:meth:`learn_on`). It returns whether it
        took gradient steps."""
        if not self.runs_in_process():
            new_steps = self.sample_into_replay()
            learn(new_steps, self.lifetime_counts(), True)
            return
        runner = self.env_runner_group.local_env_runner
        counts = self.lifetime_counts()
        target = self.config.min_sample_timesteps_per_iteration or 0
        sampled, learned = 0, False
        while True:
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                episodes = runner.sample()
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
                new_steps = self.store_episodes(episodes)
            sampled += new_steps
            # What the env runner's metrics add to the lifetime counts once reduced: its env
            # steps and its finished episodes (a test checks the sums against RLlib's).
            counts[NUM_ENV_STEPS_SAMPLED_LIFETIME] += new_steps
            counts[NUM_EPISODES_LIFETIME] += sum(1 for e in episodes if e.is_done)
            learned = learn(new_steps, dict(counts), False) or learned
            if sampled >= target:
                break
        self.metrics.aggregate([runner.get_metrics()], key=ENV_RUNNER_RESULTS)
        self.log_replay_size()
        if learned:
            self.metrics.aggregate(
                [result.get() for result in self.learner_group.foreach_learner(
                    lambda learner: learner.metrics.reduce())], key=LEARNER_RESULTS)

    def log_replay_size(self) -> None:
        """The replay's size (all modules' together) as a metric."""
        self.metrics.log_value(REPLAY_SIZE_KEY, self.replay.total_size, window=1)

    def sample_into_replay(self) -> int:
        """One synchronous sampling round from the env runners into the replay; returns the
        number of new env steps. Lost env runners raise or are replaced
        (:func:`~rllib_ext.core.env_runner_faults.sample_env_runners`)."""
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = sample_env_runners(self)
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            new_steps = self.store_episodes(episodes)
        self.log_replay_size()
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

    def learn_on(self, data: dict, timesteps: dict, *, reduce: bool = True) -> None:
        """All rows of ``data`` (``{module_id: columns}``) as one RLlib minibatch: the learners
        cut it into consecutive ``train_batch_size_per_learner`` batches, one gradient step
        each (every module's rows side by side), so RLlib's per-minibatch slicing and logging
        run once per cycle. The learner results go into the algorithm's metrics; with
        ``reduce=False`` (a local learner only) the learner keeps its metrics for
        :meth:`learn_cycles` to reduce."""
        rows = max(len(next(iter(columns.values()))) for columns in data.values())
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=MultiAgentBatch({module_id: SampleBatch(columns)
                                       for module_id, columns in data.items()}, env_steps=rows),
                minibatch_size=None, num_epochs=1, shuffle_batch_per_epoch=False,
                timesteps=timesteps, **({} if reduce else LEARNER_UPDATE_WITHOUT_REDUCE))
            if reduce:
                self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

    def sync_runner_weights(self, policies) -> None:
        """The inference weights of the modules ``policies`` (ids) to every env runner.

        With the local env runner alone (``num_env_runners=0``) and a local learner, the
        runner's modules hold the learner's own parameter tensors (:meth:`_share_weights`, done
        on the first sync of each module), so the learner's optimizer steps reach the runner
        without a copy and a sync only passes on the weights' sequence number: copying the
        state every cycle cost 7-9 % of an env step at one gradient step per env step
        (benchmarks/RESULTS.md). The runner acts with the same weights either way. Where a
        module cannot share (another device or dtype on the learner), its state goes straight
        from the learner to the runner, without RLlib's ``ray.put`` for remote runners that do
        not exist."""
        policies = set(policies)
        group = self.env_runner_group
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            if not self.runs_in_process():
                group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                   policies=policies, inference_only=True)
                return
            learner, runner = local_learner(self.learner_group), group.local_env_runner
            if all(self._share_weights(p, learner, runner) for p in policies):
                set_env_runner_weights_seq_no(runner, weights_seq_no(learner))
                return
            state = self.learner_group.get_state(
                components=[f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{p}" for p in policies],
                inference_only=True)[COMPONENT_LEARNER]
            runner.set_state(
                {k: v for k, v in state.items() if k in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO)})

    def _share_weights(self, module_id, learner, runner) -> bool:
        """Whether the runner's module ``module_id`` holds the learner's tensors, making it so
        if it can (:func:`~rllib_ext.core.rllib_compat.alias_module_tensors`; its inference-only
        state is a part of the learner module's). A module built anew (``add_module``) is
        shared anew on its first sync."""
        runner_module = (runner.module[module_id] if isinstance(runner.module, MultiRLModule)
                         else runner.module)
        learner_module = learner.module[module_id].unwrapped()
        shared = self.__dict__.setdefault("_shared_modules", {})
        pair = shared.get(module_id)
        if pair is not None and pair[0] is learner_module and pair[1] is runner_module:
            return True
        if not alias_module_tensors(learner_module, runner_module):
            return False
        shared[module_id] = (learner_module, runner_module)
        return True
