"""REINFORCE (Williams, 1992) on RLlib's new API stack: ``PGConfig`` and ``PG``.

One iteration samples complete episodes (at least ``train_batch_size_per_learner`` env steps
per learner), computes discounted reward-to-go and a baseline per episode on the driver, takes
one gradient step on ``-mean(log pi(a|s) * (G - b))`` and syncs the new weights to the env
runners.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_ext.algorithms.pg.advantages import BASELINES, add_advantages_to_episodes
from rllib_ext.algorithms.spaces import probe_env_spaces


class PGConfig(AlgorithmConfig):
    """Configuration for REINFORCE (vanilla policy gradient with reward-to-go and baselines).

    .. code-block:: python

        from rllib_ext import PGConfig

        config = (
            PGConfig()
            .environment("CartPole-v1")
            .training(lr=5e-3, train_batch_size_per_learner=2000, baseline="mean")
        )
        algo = config.build_algo()
        print(algo.train()["env_runners"]["episode_return_mean"])

    Defaults that differ from ``AlgorithmConfig``: ``batch_mode="complete_episodes"`` (required),
    ``lr=1e-3``, ``train_batch_size_per_learner=2000`` and a learned state-independent log-std
    for Box actions (``model_config["free_log_std"]=True``).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PG)
        # Overrides of AlgorithmConfig defaults.
        self.lr = 1e-3
        self.gamma = 0.99
        self.train_batch_size_per_learner = 2000
        # REINFORCE sums rewards to the end of the episode: only whole episodes are usable.
        self.batch_mode = "complete_episodes"
        # PG-specific settings.
        self.baseline = "mean"
        self.normalize_advantages = True

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        baseline: str | None = NotProvided,
        normalize_advantages: bool | None = NotProvided,
        **kwargs,
    ) -> PGConfig:
        """Sets the training-related configuration.

        Args:
            baseline: What to subtract from the reward-to-go G_t before weighting the score
                function. ``"none"``: plain reward-to-go (unbiased, highest variance).
                ``"mean"`` (default): the batch mean of G_t over all steps. ``"time_mean"``: the
                mean of G_t over the batch's episodes at the same time step t, which tracks the
                shrinking return-to-go late in long episodes. Both baselines use the same batch
                they correct (a slight bias of order 1/batch episodes, standard practice).
            normalize_advantages: Shift and scale the batch's advantages to mean 0 and std 1
                after the baseline. Makes the step size independent of the reward scale; on
                by default. Turn off to get the textbook estimator (e.g. for variance studies).
            **kwargs: Any ``AlgorithmConfig.training`` argument. The ones PG reads: ``lr``
                (Adam step size; 1e-4..1e-2 for small MLPs), ``gamma`` (discount, 0.9..1.0),
                ``train_batch_size_per_learner`` (env steps per learner per update, rounded up to
                whole episodes; 500..10 000), ``grad_clip``/``grad_clip_by``.

        Returns:
            This updated PGConfig.
        """
        super().training(**kwargs)
        if baseline is not NotProvided:
            self.baseline = baseline
        if normalize_advantages is not NotProvided:
            self.normalize_advantages = normalize_advantages
        return self

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # A state-independent, learned log-std for Box actions (the classic REINFORCE
        # Gaussian); PGCatalog turns it off for non-Box spaces.
        return super()._model_config_auto_includes | {"free_log_std": True}

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_ext.algorithms.pg.torch.default_pg_torch_rl_module import (
            DefaultPGTorchRLModule,
        )

        return RLModuleSpec(module_class=DefaultPGTorchRLModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_ext.algorithms.pg.torch.pg_torch_learner import PGTorchLearner

        return PGTorchLearner

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        if self.framework_str != "torch":
            self._value_error(
                f"PG supports framework='torch' only, got {self.framework_str!r}; "
                "call config.framework('torch')."
            )
        if self.batch_mode != "complete_episodes":
            self._value_error(
                f"PG needs whole episodes to compute reward-to-go, got "
                f"batch_mode={self.batch_mode!r}; "
                "call config.env_runners(batch_mode='complete_episodes')."
            )
        if self.baseline not in BASELINES:
            self._value_error(
                f"Unknown baseline={self.baseline!r}; "
                f"call config.training(baseline=...) with one of {list(BASELINES)}."
            )
        if not isinstance(self.normalize_advantages, bool):
            self._value_error(
                f"normalize_advantages must be True or False, got {self.normalize_advantages!r}."
            )
        if not 0.0 <= self.gamma <= 1.0:
            self._value_error(
                f"gamma={self.gamma} is outside [0, 1]; call config.training(gamma=0.99) or "
                "another discount in [0, 1]."
            )
        if self.lr is None or self.lr <= 0:
            self._value_error(f"lr={self.lr} must be > 0; e.g. config.training(lr=1e-3).")
        if int(self.train_batch_size_per_learner or 0) < 1:
            self._value_error(
                f"train_batch_size_per_learner={self.train_batch_size_per_learner} must be >= 1;"
                " e.g. config.training(train_batch_size_per_learner=2000)."
            )
        if self.num_epochs != 1 or self.minibatch_size is not None:
            self._value_error(
                f"PG takes exactly one gradient step per batch (got num_epochs="
                f"{self.num_epochs}, minibatch_size={self.minibatch_size}): reusing on-policy "
                "data without importance weights biases the gradient. Remove these settings."
            )
        if self.is_multi_agent:
            self._value_error(
                "PG supports single-agent environments only; remove config.multi_agent(...)."
            )
        if self.model_config.get("use_lstm") or self.model_config.get("use_attention"):
            self._value_error(
                "PG's default module is feed-forward; remove use_lstm/use_attention from "
                "model_config."
            )
        if self.env is not None:
            self._validate_action_space(probe_env_spaces(self)[1])

    def _validate_action_space(self, action_space: gym.Space) -> None:
        supported = isinstance(action_space, gym.spaces.Discrete) or (
            isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
        )
        if not supported:
            self._value_error(
                f"PG supports Discrete and 1-D Box action spaces, got {action_space}. Wrap the "
                "env (e.g. flatten a multi-dimensional Box) or use another algorithm."
            )


class PG(Algorithm):
    """REINFORCE with reward-to-go and an optional baseline. Tune name: ``"PG"``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PGConfig:
        return PGConfig()

    @override(Algorithm)
    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=self.config.total_train_batch_size,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        if not episodes:
            return
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)

        # Reward-to-go, baseline and advantages over the *whole* batch, before the LearnerGroup
        # shards (and possibly slices) the episodes across learners.
        add_advantages_to_episodes(
            episodes,
            gamma=self.config.gamma,
            baseline=self.config.baseline,
            normalize=self.config.normalize_advantages,
        )

        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                },
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0].keys()) - {ALL_MODULES},
                inference_only=True,
            )
