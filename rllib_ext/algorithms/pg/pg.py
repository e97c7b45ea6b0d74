"""REINFORCE (Williams, 1992) on RLlib's new API stack: ``PGConfig`` and ``PG``.

One iteration samples complete episodes (at least ``train_batch_size_per_learner`` env steps
per learner), computes discounted reward-to-go and a baseline per episode on the driver, takes
one gradient step on ``-mean(log pi(a|s) * (G - b))`` and syncs the new weights to the env
runners. With ``off_policy_reuse=M`` the step also uses the previous M batches, importance
weighted against the behaviour log-probs the env runners recorded when sampling them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import DEFAULT_MODULE_ID, RLModuleSpec
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
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
from rllib_ext.algorithms.pg.default_pg_rl_module import VALUE_NETWORK_KEY
from rllib_ext.algorithms.pg.importance_sampling import IMPORTANCE_SAMPLING_MODES
from rllib_ext.core.action_bounds import lean_action_bounds
from rllib_ext.core.env_runner_faults import sample_env_runners
from rllib_ext.core.non_finite import NonFiniteGuardConfig
from rllib_ext.core.parameterised.hybrid_knobs import HybridPolicyKnobs
from rllib_ext.core.parameterised.torch.hybrid_policy import is_hybrid_space
from rllib_ext.core.plain_config import PlainDictConfig
from rllib_ext.core.random_streams import SeparateEvaluationRandomness
from rllib_ext.core.rllib_compat import config_value_error
from rllib_ext.core.spaces import FLATTEN_OBSERVATIONS_FIX, policy_spaces
from rllib_ext.core.threads import limit_torch_threads
from rllib_ext.core.validation import KnobChecks


class PGConfig(PlainDictConfig, KnobChecks, HybridPolicyKnobs, NonFiniteGuardConfig,
               AlgorithmConfig):
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

    Parameterised action spaces (``Tuple(Discrete(K), Box...)``, e.g. Platform, Moving) get
    H-PPO's hybrid distribution: a Categorical over the K actions times a diagonal Gaussian
    over the parameters, by default with a learned state-independent sigma starting at 0.3
    (``training(logp_mode=, bound=, sigma=, initial_sigma=, param_layout=)``).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PG)
        # Overrides of AlgorithmConfig defaults.
        # Greedy evaluation (RLlib's evaluation explores unless told not to).
        self.evaluation_config = {"explore": False}
        self.lr = 1e-3
        self.gamma = 0.99
        self.train_batch_size_per_learner = 2000
        # REINFORCE sums rewards to the end of the episode: only whole episodes are usable.
        self.batch_mode = "complete_episodes"
        # PG-specific settings.
        self.reward_to_go = True
        self.baseline = "mean"
        self.normalize_advantages = True
        self.off_policy_reuse = 0
        self.importance_sampling = "per_decision"
        self.is_clip = None
        self.is_self_normalize = False
        self.gae_lambda = 1.0
        self.value_lr = 1e-3
        self.value_gradient_steps = 5
        # The hybrid policy (parameterised action spaces only): REINFORCE's classic learned,
        # state-independent sigma, as for Box actions.
        self.init_hybrid_knobs(sigma="state_independent", initial_sigma=0.3)

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        reward_to_go: bool | None = NotProvided,
        baseline: str | None = NotProvided,
        normalize_advantages: bool | None = NotProvided,
        off_policy_reuse: int | None = NotProvided,
        importance_sampling: str | None = NotProvided,
        is_clip: float | None = NotProvided,
        is_self_normalize: bool | None = NotProvided,
        gae_lambda: float | None = NotProvided,
        value_lr: float | None = NotProvided,
        value_gradient_steps: int | None = NotProvided,
        logp_mode: str | None = NotProvided,
        bound: str | None = NotProvided,
        sigma: str | None = NotProvided,
        initial_sigma: float | None = NotProvided,
        param_layout: list[int] | None = NotProvided,
        **kwargs,
    ) -> PGConfig:
        """Sets the training-related configuration.

        Args:
            reward_to_go: Weight the score at step t with the rewards from t on, G_t (default,
                "causality"), instead of the whole return R(tau) of the episode. Both are
                unbiased; reward-to-go drops the earlier rewards' pure noise. ``False`` exists
                for variance studies (benchmarks/pg_variance.py).
            baseline: What to subtract from the reward-to-go G_t before weighting the score
                function. ``"none"``: plain reward-to-go (unbiased, highest variance).
                ``"mean"`` (default): the batch mean of G_t over all steps. ``"time_mean"``: the
                mean of G_t over the batch's episodes at the same time step t, which tracks the
                shrinking return-to-go late in long episodes. ``"optimal"``: the per-parameter
                variance-optimal b_k = E[g_k h_k] / E[g_k^2] from per-trajectory score
                gradients g (E[g_k^2 R] / E[g_k^2] without reward-to-go), computed in the
                learner with torch.func per-step gradients: about one extra forward+backward
                pass per step (see torch/score_gradients.py); needs
                ``normalize_advantages=False``. With several learners each estimates b from
                its own shard of episodes. ``"value"``: a learned state-value network V(s_t)
                (same layer sizes as the policy, no shared weights) fitted to the reward-to-go;
                state-dependent, so it removes the part of G_t the state explains, the
                strongest of these when returns depend much on the state (e.g. continuous
                control); with ``gae_lambda`` < 1 the advantages are GAE. It bootstraps
                truncated episodes with V(s_T). The batch baselines use the same batch they
                correct (a bias of order 1/batch episodes, standard practice); the value
                network's advantages come from its weights before it sees the batch.
            normalize_advantages: Shift and scale the batch's advantages to mean 0 and std 1
                after the baseline. Makes the step size independent of the reward scale; on
                by default. Turn off to get the textbook estimator (e.g. for variance studies).
            off_policy_reuse: M >= 0. Each gradient step also uses the last M batches, sampled
                by older policies, importance weighted by ``importance_sampling``: M + 1 times
                the data per step at the same env steps. 0 (default) is plain on-policy
                REINFORCE. Typical 1..4; the stored batches are not checkpointed.
            importance_sampling: How reused episodes are weighted, with rho_t = pi(a_t|s_t) /
                mu(a_t|s_t) against the behaviour log-probs recorded at sampling time.
                ``"trajectory"``: the product of all the episode's ratios (unbiased, variance
                exponential in the episode length). ``"per_decision"`` (default): causal
                products, ratios up to t for the score and reward at t (unbiased, lower
                variance; needs reward_to_go). ``"per_step"``: rho_t only, ignoring the change
                of state distribution (biased, lowest variance). See importance_sampling.py.
            is_clip: Truncate every importance weight at this value (None: no truncation).
                Bounds the variance at the cost of a bias towards the old policies; 1..10
                typical. Requires off_policy_reuse > 0.
            is_self_normalize: Divide the weights by their batch mean (weighted importance
                sampling): consistent, slightly biased, robust to huge weights. Requires
                off_policy_reuse > 0.
            gae_lambda: lambda of generalised advantage estimation, in [0, 1], with
                ``baseline="value"``: A_t = sum_l (gamma lambda)^l delta_{t+l}. 1.0 (default)
                is reward-to-go minus V(s_t) (unbiased); lower trades bias from V's errors for
                less variance (0.9..0.99 typical; 0 = one-step TD error).
            value_lr: Adam step size of the value network (``baseline="value"``; 1e-3
                default, 1e-4..1e-2).
            value_gradient_steps: Full-batch gradient steps of the value network per
                iteration, after the policy step (``baseline="value"``; 5 default, 1..50). Its
                targets are the batch's reward-to-go normalised to mean 0, std 1.
            logp_mode, bound, sigma, initial_sigma, param_layout: The hybrid policy of a
                parameterised action space, as in ``HPPOConfig.training`` (see
                :mod:`rllib_ext.core.parameterised.hybrid_knobs`): "chosen", "tanh_mean",
                ``sigma="state_independent"`` (learned; "fixed" or "state_dependent"),
                ``initial_sigma=0.3``, ``param_layout=None`` by default. Ignored for Discrete
                and Box action spaces.
            **kwargs: Any ``AlgorithmConfig.training`` argument. The ones PG reads: ``lr``
                (Adam step size; 1e-4..1e-2 for small MLPs), ``gamma`` (discount, 0.9..1.0),
                ``train_batch_size_per_learner`` (env steps per learner per update, rounded up to
                whole episodes; 500..10 000), ``grad_clip``/``grad_clip_by``.

        Returns:
            This updated PGConfig.
        """
        super().training(**kwargs)
        for name, value in (
            ("reward_to_go", reward_to_go),
            ("baseline", baseline),
            ("normalize_advantages", normalize_advantages),
            ("off_policy_reuse", off_policy_reuse),
            ("importance_sampling", importance_sampling),
            ("is_clip", is_clip),
            ("is_self_normalize", is_self_normalize),
            ("gae_lambda", gae_lambda),
            ("value_lr", value_lr),
            ("value_gradient_steps", value_gradient_steps),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        self.set_hybrid_knobs(logp_mode=logp_mode, bound=bound, sigma=sigma,
                              initial_sigma=initial_sigma, param_layout=param_layout)
        return self

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # A state-independent, learned log-std for Box actions (the classic REINFORCE
        # Gaussian); PGCatalog turns it off for non-Box spaces.
        return super()._model_config_auto_includes | {
            "free_log_std": True, VALUE_NETWORK_KEY: self.baseline == "value",
            **self.hybrid_model_config()}

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
    def build_module_to_env_connector(self, env=None, spaces=None):
        """RLlib's pipeline with the action bounds applied once per batch (or not at all for
        actions without a Box): ``rllib_ext.core.action_bounds``."""
        return lean_action_bounds(self, super().build_module_to_env_connector(env, spaces))

    @override(AlgorithmConfig)
    def validate(self) -> None:
        # Ours first: RLlib's own validate() trips over some bad values with unclear errors.
        self.check_rllib_knobs(lr_example=1e-3, gamma_example=0.99)
        super().validate()
        if self.framework_str != "torch":
            config_value_error(self,
                f"PG supports framework='torch' only, got {self.framework_str!r}; "
                "call config.framework('torch')."
            )
        if self.batch_mode != "complete_episodes":
            config_value_error(self,
                f"PG needs whole episodes to compute reward-to-go and importance products "
                f"(importance_sampling={self.importance_sampling!r}), got "
                f"batch_mode={self.batch_mode!r}; "
                "call config.env_runners(batch_mode='complete_episodes')."
            )
        self.check_choice("baseline", BASELINES)
        for name in ("reward_to_go", "normalize_advantages", "is_self_normalize"):
            self.check_bool(name)
        if self.baseline == "optimal" and self.normalize_advantages:
            config_value_error(self,
                "baseline='optimal' computes its own per-parameter baseline in the learner; "
                "normalize_advantages=True would subtract the batch mean first. Call "
                "config.training(baseline='optimal', normalize_advantages=False) (and tune lr "
                "to the reward scale)."
            )
        self._validate_off_policy_reuse()
        self._validate_value_baseline()
        if self.num_epochs != 1 or self.minibatch_size is not None:
            config_value_error(self,
                f"PG takes exactly one gradient step per batch (got num_epochs="
                f"{self.num_epochs}, minibatch_size={self.minibatch_size}): reusing on-policy "
                "data without importance weights biases the gradient. Remove these settings."
            )
        if self.model_config.get("use_attention"):
            config_value_error(self,
                "PG's default module is feed-forward or LSTM; remove use_attention from "
                "model_config (use_lstm=True for a recurrent policy)."
            )
        if self.model_config.get("use_lstm") and (
                self.baseline in ("optimal", "value") or self.off_policy_reuse > 0):
            config_value_error(self,
                f"A recurrent policy (use_lstm=True) trains on zero-padded sequences; "
                f"baseline={self.baseline!r} / off_policy_reuse={self.off_policy_reuse} need "
                "each step's own state and are not supported with it. Use baseline='mean', "
                "'time_mean' or 'none' and off_policy_reuse=0."
            )
        if self.env is not None:
            for _, action_space in policy_spaces(self).values():
                self._validate_action_space(action_space)

    def _validate_off_policy_reuse(self) -> None:
        self.check_number("off_policy_reuse", low=0, integer=True, example=0)
        m = self.off_policy_reuse
        self.check_choice("importance_sampling", IMPORTANCE_SAMPLING_MODES)
        self.check_number("is_clip", low=0, low_open=True, none_ok=True, example=5.0)
        if m == 0 and (self.is_clip is not None or self.is_self_normalize):
            config_value_error(self,
                f"is_clip={self.is_clip!r} / is_self_normalize={self.is_self_normalize!r} only "
                "act on reused data, but off_policy_reuse=0; set off_policy_reuse >= 1 or "
                "remove them."
            )
        if m > 0 and self.importance_sampling == "per_decision" and not self.reward_to_go:
            config_value_error(self,
                "importance_sampling='per_decision' weights each reward by the ratios up to "
                "its own step, which is the reward-to-go form; set reward_to_go=True or use "
                "importance_sampling='trajectory'."
            )
        if m > 0 and self.importance_sampling != "per_step" and self.num_learners > 1:
            config_value_error(self,
                f"importance_sampling={self.importance_sampling!r} multiplies ratios over whole "
                f"episodes, but with num_learners={self.num_learners} RLlib may split an "
                "episode across learners; use config.learners(num_learners=1) or "
                "importance_sampling='per_step'."
            )

    def _validate_value_baseline(self) -> None:
        self.check_number("gae_lambda", low=0, high=1, example=0.95)
        self.check_learning_rate("value_lr", example=1e-3)
        self.check_number("value_gradient_steps", low=1, integer=True, example=5)
        if self.baseline != "value":
            if self.gae_lambda != 1.0:
                config_value_error(self,
                    f"gae_lambda={self.gae_lambda} needs a learned value function; set "
                    "config.training(baseline='value', gae_lambda=...) or gae_lambda=1.0.")
            return
        if not self.reward_to_go or self.off_policy_reuse > 0:
            config_value_error(self,
                f"baseline='value' fits V to the reward-to-go of fresh data (got reward_to_go="
                f"{self.reward_to_go}, off_policy_reuse={self.off_policy_reuse}); set "
                "config.training(reward_to_go=True, off_policy_reuse=0) or another baseline.")
        if self.env is None:
            return
        for observation_space, _ in policy_spaces(self).values():
            if not (isinstance(observation_space, gym.spaces.Box)
                    and len(observation_space.shape) == 1):
                config_value_error(self,
                    f"baseline='value' needs a 1-D Box observation space (after the "
                    f"env-to-module connectors), got {observation_space}; "
                    f"{FLATTEN_OBSERVATIONS_FIX}, or use baseline='mean'.")

    def _validate_action_space(self, action_space: gym.Space) -> None:
        if is_hybrid_space(action_space):
            self.validate_hybrid_knobs()
            self.hybrid_layout(action_space, "PG")
            if self.model_config.get("use_lstm"):
                config_value_error(self,
                    "PG's recurrent policy supports Discrete and 1-D Box action spaces; for "
                    f"{action_space} remove use_lstm from model_config.")
            return
        supported = isinstance(action_space, gym.spaces.Discrete) or (
            isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
        )
        if not supported:
            config_value_error(self,
                f"PG supports Discrete, 1-D Box and parameterised Tuple(Discrete(K), Box...) "
                f"action spaces, got {action_space}. Wrap the env (e.g. flatten a "
                "multi-dimensional Box) or use another algorithm."
            )


def per_module(episodes, ages) -> dict[str, tuple[list, list[int]]]:
    """``{module_id: (single-agent episodes, their ages)}``: a multi-agent episode splits into
    its agents' episodes, each under the module its agent maps to; single-agent episodes all
    belong to the default module. The baselines and advantage statistics are per module, over
    that module's share of the batch."""
    groups: dict[str, tuple[list, list[int]]] = {}
    for episode, age in zip(episodes, ages, strict=True):
        if isinstance(episode, MultiAgentEpisode):
            parts = [(episode.module_for(agent_id), agent_episode)
                     for agent_id, agent_episode in episode.agent_episodes.items()]
        else:
            parts = [(DEFAULT_MODULE_ID, episode)]
        for module_id, part in parts:
            group = groups.setdefault(module_id, ([], []))
            group[0].append(part)
            group[1].append(age)
    return groups


class PG(SeparateEvaluationRandomness, Algorithm):
    """REINFORCE with baselines and importance-weighted reuse. Tune name: ``"PG"``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PGConfig:
        return PGConfig()

    @override(Algorithm)
    def setup(self, config) -> None:
        limit_torch_threads(config)
        super().setup(config)
        # The last off_policy_reuse batches (lists of complete episodes), newest first. Each
        # episode keeps the behaviour log-probs its env runner recorded (Columns.ACTION_LOGP).
        self._past_batches: deque[list] = deque(maxlen=self.config.off_policy_reuse)

    def _value_predictions(self, episodes, module_id=DEFAULT_MODULE_ID
                           ) -> list[np.ndarray] | None:
        """``baseline="value"``: module ``module_id``'s value network's outputs at every
        observation of every (single-agent) episode (T+1 each: the last bootstraps a truncated
        episode), from the first learner (all hold the same weights); None for the other
        baselines."""
        if self.config.baseline != "value":
            return None
        observations = [np.asarray(episode.get_observations(), np.float32)
                        for episode in episodes]
        values = next(iter(self.learner_group.foreach_learner(
            lambda learner, obs=np.concatenate(observations): learner.value_predictions(
                obs, module_id))))
        values = values.get() if hasattr(values, "get") else values
        return np.split(values, np.cumsum([len(o) for o in observations])[:-1])

    @override(Algorithm)
    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = sample_env_runners(
                self, max_env_steps=self.config.total_train_batch_size
            )
        if not episodes:
            return
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)

        # Fresh episodes first (age 0), then the stored batches, newest first (age 1, 2, ...).
        batch = list(episodes)
        ages = [0] * len(episodes)
        for age, past in enumerate(self._past_batches, start=1):
            batch.extend(past)
            ages.extend([age] * len(past))
        if self.config.off_policy_reuse > 0:
            self._past_batches.appendleft(episodes)

        # Reward-to-go, baseline and advantages over the *whole* batch of each module, before
        # the LearnerGroup shards (and possibly slices) the episodes across learners.
        for module_id, (module_episodes, module_ages) in per_module(batch, ages).items():
            add_advantages_to_episodes(
                module_episodes,
                gamma=self.config.gamma,
                baseline=self.config.baseline,
                normalize=self.config.normalize_advantages,
                reward_to_go=self.config.reward_to_go,
                ages=module_ages,
                normalized_values=self._value_predictions(module_episodes, module_id),
                gae_lambda=self.config.gae_lambda,
            )

        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=batch,
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
