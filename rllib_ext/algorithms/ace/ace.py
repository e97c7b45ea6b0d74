"""ACE: off-policy actor-critic with causality-aware entropy regularisation (Ji, Liang et al.,
ICML 2024), on RLlib's SAC: ``ACEConfig`` and ``ACE``.

What ACE adds to SAC:

* **Causality-aware entropy.** The entropy terms of the critic target, the policy loss and the
  alpha loss use ``sum_i w_i log pi_i(a_i|s)`` (per-dimension tanh-Gaussian log-likelihoods
  weighted by causal weights ``w``, sum(w) = A) instead of ``log pi(a|s)``
  (:mod:`.torch.ace_torch_learner`).
* **Causal discovery.** Every ``causal_update_interval`` env steps, DirectLiNGAM on the last
  ``causal_sample_size`` transitions ``[s, a, r]`` estimates the direct effects a_i -> r, mapped
  to ``w`` (:mod:`.causal`). The fit runs in a Ray actor (``causal_async=True``): training keeps
  going with the previous weights until the new ones arrive (:mod:`.callbacks`).
* **Delayed updates.** Policy, alpha and target critics are updated every
  ``policy_update_freq``-th gradient step; the critics every step.
* **Dormancy-guided soft resets.** Every ``reset_interval`` gradient updates the networks are
  mixed with a fresh initialisation; the strength comes from the policy's gradient-dormancy
  ratio (or from the spread of the causal weights) (:mod:`.dormancy`).

The networks are RLlib's SAC module; the training step is the off-policy one of
:mod:`rllib_ext.core.replay_training` (as the parameterised family's): sample from the env
runners, store the transitions in a flat replay (:mod:`rllib_ext.core.replay`, uniform or
proportional-prioritised) and the causal FIFO, then take ``updates_per_env_step`` x (new env
steps) gradient steps in one ``learner_group.update`` call (priorities come back from the
learners after it) and sync the weights.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import ray
from ray.exceptions import RayActorError
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac.sac import SAC, SACConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_SAMPLE_TIMER,
    REPLAY_BUFFER_UPDATE_PRIOS_TIMER,
    TIMERS,
)
from ray.tune.execution.placement_groups import PlacementGroupFactory

from rllib_ext.algorithms.ace.ace_keys import CRITIC_LOSSES
from rllib_ext.algorithms.ace.callbacks import ACECallback
from rllib_ext.algorithms.ace.causal import BACKENDS, TRANSFORMS
from rllib_ext.algorithms.ace.causal_state import CausalState, create_causal_worker, run_fit
from rllib_ext.algorithms.ace.direct_lingam import COEFFICIENTS
from rllib_ext.algorithms.ace.dormancy import causal_perturb_factor, perturb_factor
from rllib_ext.algorithms.ace.torch.default_ace_torch_rl_module import (
    LOG_STD_BOUNDS_KEY,
    Q_NETWORK_KEY,
    Q_NETWORKS,
    RANDOM_WARMUP_KEY,
    ACECatalog,
)
from rllib_ext.core.module_replays import (
    ModuleReplays,
    PerModule,
    module_chunks,
    trained_module_ids,
)
from rllib_ext.core.non_finite import NonFiniteGuardConfig
from rllib_ext.core.plain_config import PlainDictConfig
from rllib_ext.core.random_streams import SeparateEvaluationRandomness
from rllib_ext.core.replay import (
    IS_WEIGHTS,
    REPLAY_INDEX,
    TransitionReplay,
    episode_transitions,
)
from rllib_ext.core.replay_training import ReplayTrainingStep
from rllib_ext.core.rllib_compat import config_value_error
from rllib_ext.core.spaces import FLATTEN_OBSERVATIONS_FIX, is_image_space, policy_spaces
from rllib_ext.core.threads import limit_torch_threads
from rllib_ext.core.validation import KnobChecks, is_integer, is_real

#: ``reset_strength`` values: what sets the kept fraction of a soft reset.
RESET_STRENGTHS = ("dormancy", "causal")
#: ``reset_scope`` values: which neurons a soft reset mixes.
RESET_SCOPES = ("all", "dormant")
#: Replay types of ``replay_buffer_config["type"]`` and whether they prioritise.
REPLAY_TYPES = {"PrioritizedEpisodeReplayBuffer": True, "EpisodeReplayBuffer": False}
#: Algorithm-state key of ACE's causal state (FIFO, weights, fit status).
ACE_ALGORITHM_STATE = "ace"


class ACEConfig(PlainDictConfig, KnobChecks, NonFiniteGuardConfig, SACConfig):
    """Configuration of ACE (SAC's settings plus the causal and reset knobs).

    .. code-block:: python

        from rllib_ext import ACEConfig

        config = (
            ACEConfig()
            .environment("rllib_ext/CausalReach-v0")
            .training(causal_sample_size=5000, causal_update_interval=5000)
        )
        algo = config.build_algo()

    The ACE knobs default to the reference's values (``main_causal.py``), and so do the
    pieces of the SAC update where the reference differs from RLlib's SAC (``critic_loss``,
    ``sequential_actor_update``, ``log_std_bounds``, ``random_warmup_steps`` and the start of
    learning, ``actor_lr``); the networks and batch size keep RLlib's SAC defaults. ACE's
    machinery runs from :class:`~.callbacks.ACECallback`, installed
    here; to add your own callbacks pass a list: ``config.callbacks([ACECallback, Mine])``.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ACE)
        self.callbacks_class = ACECallback
        # Greedy evaluation (RLlib's evaluation explores unless told not to): the mean action.
        self.evaluation_config = {"explore": False}
        self.causal_sample_size = 10_000
        self.causal_update_interval = 10_000
        self.causal_weight_transform = "softmax"
        self.causal_backend = "fast"
        self.causal_coefficients = "lasso"
        self.causal_async = True
        self.causal_worker_num_cpus = 1.0
        self.causal_num_threads = 1
        self.reset_interval = 100_000
        self.reset_strength = "dormancy"
        self.reset_scope = "all"
        self.dormancy_threshold = 0.05
        self.perturb_factor_min = 0.2
        self.perturb_factor_max = 0.9
        self.policy_update_freq = 2
        self.updates_per_env_step = 1.0
        self.q_network = "concat"
        # The reference's learning rate for the policy too (RLlib's SAC default is 3e-5).
        self.actor_lr = 3e-4
        self.critic_loss = "mse"
        self.sequential_actor_update = True
        self.log_std_bounds = (-20.0, 2.0)
        self.random_warmup_steps = 10_000
        # Gradient steps start once the replay holds one train batch (the reference: as soon
        # as it holds more than one batch), during the random warm-up.
        self.num_steps_sampled_before_learning_starts = 256
        self.store_replay_in_checkpoint = False
        # Fragments of this many env steps per env runner and iteration step, then their
        # gradient steps in one learner call (SAC's "auto" = 1 step, one update per call).
        self.rollout_fragment_length = 32
        # SAC's replay ratio knob is replaced by updates_per_env_step.
        self.training_intensity = None

    @override(SACConfig)
    def training(
        self,
        *,
        causal_sample_size=NotProvided,
        causal_update_interval=NotProvided,
        causal_weight_transform=NotProvided,
        causal_backend=NotProvided,
        causal_coefficients=NotProvided,
        causal_async=NotProvided,
        causal_worker_num_cpus=NotProvided,
        causal_num_threads=NotProvided,
        reset_interval=NotProvided,
        reset_strength=NotProvided,
        reset_scope=NotProvided,
        dormancy_threshold=NotProvided,
        perturb_factor_min=NotProvided,
        perturb_factor_max=NotProvided,
        policy_update_freq=NotProvided,
        updates_per_env_step=NotProvided,
        q_network=NotProvided,
        critic_loss=NotProvided,
        sequential_actor_update=NotProvided,
        log_std_bounds=NotProvided,
        random_warmup_steps=NotProvided,
        store_replay_in_checkpoint=NotProvided,
        **kwargs,
    ) -> ACEConfig:
        """Sets the training configuration.

        Args:
            causal_sample_size: The most recent transitions (a FIFO) each causal fit uses, and
                the number needed before the first fit (10 000 reference; 2 000..20 000 - the
                fit time grows ~(S + A + 1)^3, only mildly with this).
            causal_update_interval: Env steps between causal fits (10 000 reference; smaller
                tracks the changing policy more closely at more CPU cost). 0 never fits: the
                weights stay uniform and ACE's losses are SAC's (with resets off and
                ``policy_update_freq=1``, ACE is a fast SAC).
            causal_weight_transform: Effects -> weights: "softmax" (reference:
                A * softmax of the signed a_i -> r coefficients; negative effects get small
                weights) or "softmax_abs" (A * softmax of their magnitudes).
            causal_backend: DirectLiNGAM implementation: "fast" (default: this project's
                vectorised one, same order and coefficients as lingam's, much faster) or
                "lingam" (the ``lingam`` package).
            causal_coefficients: How the a_i -> r effects are estimated once the causal order
                is known: "lasso" (default, the reference's vendored causal-learn lingam
                1.5.4: the shrunken adaptive-lasso coefficients on the unstandardised data) or
                "ols" (pip lingam's: lasso selection on standardised data, then an OLS refit,
                larger coefficients and so more spread weights for the same data).
            causal_async: True (default): fit in a Ray actor, never blocking an iteration.
                False: fit synchronously in the training process (reproducible; blocks).
            causal_worker_num_cpus: CPUs the causal actor reserves (1 default; under Tune a
                bundle of the trial's placement group). 0 shares the CPUs of the rest of the
                run (a fit then competes with sampling and learning).
            causal_num_threads: Threads a fit may use inside the actor (1 default; up to
                ``causal_worker_num_cpus``).
            reset_interval: Gradient updates between soft resets (100 000 reference; each
                reset costs some return for a while, so keep it >= ~10 000 for real runs);
                0 turns resets off.
            reset_strength: What sets the kept fraction theta of a reset: "dormancy"
                (reference default: clip(1 - policy gradient-dormancy ratio)) or "causal"
                (from the spread of the causal weights: a larger spread, a milder reset).
            reset_scope: What a reset mixes: "all" (reference default: every neuron of the
                policy, the critics and the target critics) or "dormant" (only the neurons
                found gradient-dormant at the last measurement).
            dormancy_threshold: A neuron is gradient-dormant when its weight-gradient row norm
                is below this fraction of its layer's mean (0.05 reference; 0.01..0.1).
            perturb_factor_min: Lower clip of the kept fraction theta (0.2 reference).
            perturb_factor_max: Upper clip of the kept fraction (0.9 reference; 1.0 would make
                a reset with no dormancy a no-op).
            policy_update_freq: Policy, alpha and target critics are updated every this many
                critic updates (2 reference; 1 = SAC's schedule).
            updates_per_env_step: Replay ratio: gradient steps per sampled env step (1.0 as
                the reference; 0.25..4). Replaces SAC's ``training_intensity``. The steps of
                one iteration are taken after its sampling, in one learner call.
            q_network: The critics: "concat" (default: an MLP with ``fcnet_hiddens`` on the
                concatenated (s, a), as the reference and the SAC paper) or "multi_stream"
                (RLlib 2.60 SAC's: separate obs and action MLPs joined by fusion layers,
                several times the compute per update).
            critic_loss: "mse" (default, the reference: mean squared TD error) or "huber"
                (RLlib's SAC: Huber with delta 1, i.e. half the MSE gradient for small errors
                and a bounded one for large errors). Both are weighted by the replay's
                importance weights when it prioritises.
            sequential_actor_update: True (default, the reference): on a policy step the
                critics step first and the policy and alpha losses use the *updated* critics
                (two backward passes). False: all losses on the pre-step networks, one
                backward (RLlib's SAC order; slightly cheaper).
            log_std_bounds: (low, high) clamp of the policy's log-std, in the learner's
                losses and in exploration ((-20, 2) default, the reference; RLlib's SAC uses
                (-5, 2): a floor on the exploration noise of std ~0.007).
            random_warmup_steps: Env steps (counted over all env runners) during which the
                env runners act uniformly at random in the action space instead of sampling
                the policy (10 000 default, the reference's ``start_steps``; 0 = the policy
                acts from the start, as RLlib's SAC). Gradient steps start independently,
                once the replay holds ``num_steps_sampled_before_learning_starts``
                transitions (256 default = one train batch at the default batch size, as
                the reference's "more than one batch").
            store_replay_in_checkpoint: True: checkpoints hold the flat replay's contents
                (its filled rows, write position, priorities and sampling RNG), and a
                restored algorithm learns on at once instead of refilling the replay to
                ``num_steps_sampled_before_learning_starts`` first. Disk per checkpoint: up
                to ``replay_buffer_config["capacity"]`` x 4 bytes x (2 x obs size + action
                size + 2), plus 8 bytes a row when prioritised (Hopper, 1 000 000 rows:
                ~0.1 GB). False (default): the replay is not saved.
            **kwargs: ``SACConfig.training`` arguments (``actor_lr``, ``critic_lr``,
                ``alpha_lr``, ``tau``, ``initial_alpha``, ``twin_q``,
                ``replay_buffer_config`` - its ``type`` ("PrioritizedEpisodeReplayBuffer":
                proportional with ``alpha``, ``beta``; "EpisodeReplayBuffer": uniform) and
                ``capacity`` configure ACE's flat replay -, ...).
        """
        super().training(**kwargs)
        for name, value in locals().items():
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)
        return self

    @property
    @override(SACConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            Q_NETWORK_KEY: self.q_network,
            LOG_STD_BOUNDS_KEY: tuple(float(b) for b in self.log_std_bounds),
            RANDOM_WARMUP_KEY: int(self.random_warmup_steps)}

    @property
    def replay_alpha_beta(self) -> tuple[float, float]:
        """(alpha, beta) of the replay's prioritisation; (0, 0) = uniform."""
        rb = self.replay_buffer_config
        if not REPLAY_TYPES.get(rb.get("type"), False):
            return 0.0, 0.0
        return float(rb.get("alpha", 0.6)), float(rb.get("beta", 0.4))

    @override(SACConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_ext.algorithms.ace.torch.default_ace_torch_rl_module import (
            DefaultACETorchRLModule,
        )

        return RLModuleSpec(module_class=DefaultACETorchRLModule)

    @override(SACConfig)
    def get_default_learner_class(self):
        from rllib_ext.algorithms.ace.torch.ace_torch_learner import ACETorchLearner

        return ACETorchLearner

    @override(SACConfig)
    def validate(self) -> None:
        # Ours first: RLlib's own validate() trips over some bad values with unclear errors.
        self.check_rllib_knobs(learning_rates=("actor_lr", "critic_lr", "alpha_lr"),
                               lr_example=3e-4)
        super().validate()
        if self.framework_str != "torch":
            config_value_error(self,
                "ACE supports framework='torch' only; call config.framework('torch')."
            )
        self.check_number("tau", low=0, high=1, low_open=True, example=0.005)
        self.check_number("initial_alpha", low=0, low_open=True, example=1.0)
        if self.target_entropy != "auto":
            self.check_number("target_entropy", example="auto")
        self.check_bool("twin_q")
        self.check_bool("causal_async")
        self.check_bool("sequential_actor_update")
        self.check_bool("store_replay_in_checkpoint")
        for name, options in (("reset_strength", RESET_STRENGTHS), ("q_network", Q_NETWORKS),
                              ("reset_scope", RESET_SCOPES), ("causal_backend", BACKENDS),
                              ("causal_weight_transform", TRANSFORMS),
                              ("causal_coefficients", COEFFICIENTS),
                              ("critic_loss", CRITIC_LOSSES)):
            self.check_choice(name, options)
        self.check_number("causal_sample_size", low=2, integer=True, example=10_000)
        self.check_number("causal_update_interval", low=0, integer=True, example=10_000)
        self.check_number("reset_interval", low=0, integer=True, example=100_000)
        self.check_number("random_warmup_steps", low=0, integer=True, example=10_000)
        bounds = self.log_std_bounds
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2
                and all(is_real(b) for b in bounds) and bounds[0] < bounds[1]):
            config_value_error(self,
                f"log_std_bounds={bounds!r} must be a pair (low, high) of numbers with low < "
                "high; e.g. config.training(log_std_bounds=(-20, 2)) (the reference) or (-5, 2) "
                "(RLlib's SAC).")
        self.check_number("policy_update_freq", low=1, integer=True, example=2)
        self.check_number("causal_num_threads", low=1, integer=True, example=1)
        self.check_number("updates_per_env_step", low=0, low_open=True, example=1.0)
        self.check_number("causal_worker_num_cpus", low=0, example=1)
        self.check_number("num_steps_sampled_before_learning_starts", low=0, integer=True,
                          example=1500)
        self.check_number("dormancy_threshold", low=0, high=1, low_open=True, example=0.05)
        self.check_number("perturb_factor_min", low=0, high=1, example=0.2)
        self.check_number("perturb_factor_max", low=0, high=1, example=0.9)
        if self.training_intensity is not None:
            config_value_error(self,
                f"training_intensity={self.training_intensity} is SAC's replay ratio; ACE's is "
                "config.training(updates_per_env_step=...) (gradient steps per env step, "
                "training_intensity / train_batch_size in SAC's units); leave "
                "training_intensity=None.")
        if self.n_step != 1:
            config_value_error(self, f"n_step={self.n_step!r}: ACE's replay stores 1-step "
                               "transitions (as the reference); set "
                               "config.training(n_step=1).")
        rb = self.replay_buffer_config
        if rb.get("type") not in REPLAY_TYPES:
            config_value_error(self,
                f"replay_buffer_config type={rb.get('type')!r} is not one ACE's flat replay "
                f"implements; use one of {list(REPLAY_TYPES)} (prioritised with alpha/beta, or "
                "uniform).")
        capacity = rb.get("capacity")
        if not (is_integer(capacity) and capacity >= self.total_train_batch_size):
            config_value_error(self,
                f"replay_buffer_config capacity={capacity!r} must be an integer >= the train "
                f"batch ({self.total_train_batch_size}); fix it with config.training("
                "replay_buffer_config={'capacity': 1_000_000}) or a smaller "
                "train_batch_size_per_learner.")
        if self.num_steps_sampled_before_learning_starts > capacity:
            config_value_error(self,
                f"num_steps_sampled_before_learning_starts="
                f"{self.num_steps_sampled_before_learning_starts} exceeds the replay capacity "
                f"({capacity}): learning would never start; lower it or raise capacity.")
        alpha, beta = self.replay_alpha_beta
        if not (is_real(alpha) and alpha >= 0 and 0 <= beta <= 1):
            config_value_error(self, f"replay_buffer_config alpha={alpha}, beta={beta}: need "
                               "alpha >= 0 "
                               "and 0 <= beta <= 1 (0.6 and 0.4 typical; 0, 0 = uniform).")
        if self.perturb_factor_min > self.perturb_factor_max:
            config_value_error(self,
                f"Need 0 <= perturb_factor_min <= perturb_factor_max <= 1, got "
                f"{self.perturb_factor_min}, {self.perturb_factor_max}; e.g. "
                "config.training(perturb_factor_min=0.2, perturb_factor_max=0.9)."
            )
        if self.causal_num_threads > max(1, self.causal_worker_num_cpus):
            config_value_error(self,
                f"causal_num_threads={self.causal_num_threads} exceeds the CPUs the causal "
                f"worker reserves (causal_worker_num_cpus={self.causal_worker_num_cpus}): its "
                "threads would take the learner's CPUs; raise causal_worker_num_cpus or lower "
                "causal_num_threads.")
        if self.target_network_update_freq != 0:
            config_value_error(self,
                f"target_network_update_freq={self.target_network_update_freq} is not used: ACE "
                "updates the target critics every policy_update_freq gradient steps; set "
                "config.training(target_network_update_freq=0, policy_update_freq=...)."
            )
        callbacks = self.callbacks_class if isinstance(self.callbacks_class, (list, tuple)) \
            else [self.callbacks_class]
        if not any(isinstance(c, type) and issubclass(c, ACECallback) for c in callbacks):
            config_value_error(self,
                f"callbacks_class={self.callbacks_class!r} does not include ACECallback, which "
                "runs ACE's causal fits and resets; use config.callbacks([ACECallback, "
                "YourCallback]) (ACECallback from rllib_ext.algorithms.ace)."
            )
        if self.env is not None:
            for observation_space, action_space in policy_spaces(self).values():
                self.validate_spaces(observation_space, action_space)

    def validate_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Rejects spaces ACE cannot handle, with the fix."""
        if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1):
            config_value_error(self,
                f"ACE needs a 1-D Box action space (causal weights are per continuous "
                f"dimension), got {action_space}. For Discrete actions use SAC; flatten other "
                "Box shapes with a gymnasium action wrapper."
            )
        image = is_image_space(observation_space)
        if not (isinstance(observation_space, gym.spaces.Box)
                and len(observation_space.shape) == 1) and not image:
            config_value_error(self,
                f"ACE needs a 1-D Box observation space or an (H, W, C) float image Box (after "
                f"the env-to-module connectors), got {observation_space}; "
                f"{FLATTEN_OBSERVATIONS_FIX}."
            )
        if image:
            if self.q_network != "multi_stream":
                config_value_error(self,
                    f"q_network={self.q_network!r} feeds the critics concat(s, a), which an "
                    f"image observation {observation_space.shape} cannot be part of; use "
                    "config.training(q_network='multi_stream') (RLlib SAC's critics: the CNN "
                    "on the image, an MLP on the action, fusion layers).")
            try:
                ACECatalog(observation_space, action_space,
                           dict(self.model_config)).build_encoder(framework="torch")
            except (ValueError, RuntimeError, TypeError) as e:
                config_value_error(self,
                    f"ACE could not build RLlib's CNN encoder for {observation_space} from "
                    f"model_config (conv_filters={self.model_config.get('conv_filters')}): "
                    f"{e}. Give filters that fit the image, [[channels, [kh, kw], stride], "
                    "...], e.g. config.rl_module(model_config={'conv_filters': [[16, [4, 4], "
                    "2], [32, [4, 4], 2]]}).")
        num_vars = causal_obs_dim(observation_space) + action_space.shape[0] + 1
        if self.causal_sample_size <= num_vars:
            config_value_error(self,
                f"causal_sample_size={self.causal_sample_size} must exceed the number of "
                f"variables of the causal fit ({num_vars} = obs + actions + reward); use "
                "config.training(causal_sample_size=10000) (the reference) or at least "
                f"{20 * num_vars}."
            )


def causal_obs_dim(observation_space: gym.spaces.Box) -> int:
    """Observation variables of the causal fit: every feature of a vector observation (as the
    reference); none for an image, whose thousands of pixels DirectLiNGAM (O(p^2 n)) cannot
    take: the fit then estimates a -> r on the actions and the reward alone."""
    return 0 if is_image_space(observation_space) else int(observation_space.shape[0])


class ACE(SeparateEvaluationRandomness, ReplayTrainingStep, SAC):
    """ACE on the off-policy training step (see the module docstring). Tune name: ``"ACE"``.

    Multi-agent (``config.multi_agent(...)``), every trained module (``policies_to_train``)
    has its own replay, causal FIFO, causal weights, dormancy measurement and soft resets; the
    agents mapped to a module share them. One causal worker runs every module's fits in turn.

    Attributes:
        replay: The flat transition replays, one per trained module
            (:class:`~rllib_ext.core.module_replays.ModuleReplays` of
            :class:`~rllib_ext.core.replay.TransitionReplay`), checkpointed only with
            ``store_replay_in_checkpoint`` (else a restored run refills them before learning).
        causal: ACE's causal state per trained module (a
            :class:`~rllib_ext.core.module_replays.PerModule` of
            :class:`~.causal_state.CausalState`: FIFO, weights, fit status, the fit in flight),
            checkpointed; single-agent, ``algo.causal.weights`` reads the one module's.
        causal_worker: The :class:`~.causal_state.CausalWorker` actor (created on the first
            asynchronous fit, recreated if it dies).
    """

    #: Seconds each causal fit sleeps before fitting: 0 here; tests subclass ACE with a delay
    #: to emulate a slow fit (not a config knob: nothing a user should set).
    causal_fit_delay_s: float = 0.0

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> ACEConfig:
        return ACEConfig()

    @classmethod
    @override(SAC)
    def default_resource_request(cls, config):
        """RLlib's bundles plus one of ``causal_worker_num_cpus`` CPUs for the causal actor
        (Tune schedules the actor into it), when fits run asynchronously."""
        pgf = super().default_resource_request(config)
        if isinstance(config, dict):
            config = cls.get_default_config().update_from_dict(config)
        if not (config.causal_async and config.causal_worker_num_cpus > 0):
            return pgf
        return PlacementGroupFactory(
            bundles=[*pgf.bundles, {"CPU": config.causal_worker_num_cpus}],
            strategy=pgf.strategy)

    @override(SAC)
    def setup(self, config: ACEConfig) -> None:
        limit_torch_threads(config)
        spaces = policy_spaces(config)
        module_ids = trained_module_ids(spaces, config.policies_to_train)
        # ``on_algorithm_init`` runs inside super().setup(): the causal state exists first.
        self._causal_obs_dims = {m: causal_obs_dim(spaces[m][0]) for m in module_ids}
        self.causal = PerModule({
            m: CausalState(config.causal_sample_size, self._causal_obs_dims[m],
                           int(spaces[m][1].shape[0])) for m in module_ids})
        self.causal_worker = None
        super().setup(config)
        # SAC's episode replay is not used: ACE keeps transitions in its flat replays.
        self.local_replay_buffer = None
        alpha, self._replay_beta = config.replay_alpha_beta
        replays = {}
        for index, module_id in enumerate(module_ids):
            obs_space, action_space = spaces[module_id]
            obs_dim, action_dim = int(np.prod(obs_space.shape)), int(action_space.shape[0])
            replays[module_id] = TransitionReplay(
                config.replay_buffer_config["capacity"],
                {Columns.OBS: ((obs_dim,), np.float32),
                 Columns.NEXT_OBS: ((obs_dim,), np.float32),
                 Columns.ACTIONS: ((action_dim,), np.float32),
                 Columns.REWARDS: ((), np.float32), Columns.TERMINATEDS: ((), np.float32)},
                # Module i samples with seed + i: the single-agent replay keeps the seed.
                alpha=alpha, seed=None if config.seed is None else config.seed + index)
        self.replay = ModuleReplays(replays)

    @override(ReplayTrainingStep)
    def store_episodes(self, episodes) -> int:
        """Every new step of the sampled episode chunks into its module's replay and causal
        FIFO (multi-agent chunks split by agent); returns the env steps."""
        chunks, env_steps = module_chunks(episodes, self.replay.replays)
        for module_id, episode in chunks:
            steps = len(episode)
            columns = episode_transitions(episode)
            columns[Columns.ACTIONS] = np.asarray(episode.get_actions(), np.float32).reshape(
                steps, -1)
            self.replay[module_id].add(**columns)
            self.causal[module_id].fifo.add(
                columns[Columns.OBS][:, :self._causal_obs_dims[module_id]],
                columns[Columns.ACTIONS], columns[Columns.REWARDS])
        return env_steps

    @override(SAC)
    def training_step(self) -> None:
        self.learn_cycles(self._learn_after_sampling)

    def _learn_after_sampling(self, new_steps: int, timesteps: dict, reduce: bool) -> bool:
        """One cycle's learning (:meth:`ReplayTrainingStep.learn_cycles`): the owed gradient
        steps, the priority updates, the weight sync. True if it took gradient steps."""
        num_updates = self.owed_updates(new_steps)
        if num_updates == 0:
            return False
        data = {}
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            for module_id, replay in self.replay.replays.items():
                idx, weights = replay.sample_indices(
                    num_updates * self.config.total_train_batch_size, beta=self._replay_beta)
                data[module_id] = replay.gather(idx)
                data[module_id][IS_WEIGHTS] = weights
                if replay.prioritized:
                    data[module_id][REPLAY_INDEX] = idx
        self.learn_on(data, timesteps={
            NUM_ENV_STEPS_SAMPLED_LIFETIME: timesteps[NUM_ENV_STEPS_SAMPLED_LIFETIME]},
            reduce=reduce)
        if any(replay.prioritized for replay in self.replay.replays.values()):
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_UPDATE_PRIOS_TIMER)):
                for result in self.learner_group.foreach_learner(
                        lambda learner: learner.pop_priority_updates()):
                    for module_id, (rows, td_errors) in result.get().items():
                        self.replay[module_id].update_priorities(rows, td_errors)
        self.sync_runner_weights(data)
        return True

    # -- causal fits (called from ACECallback.on_train_result) ------------------------------

    def _fit_options(self) -> dict:
        return {"transform": self.config.causal_weight_transform,
                "backend": self.config.causal_backend,
                "coefficients": self.config.causal_coefficients,
                "random_state": self.config.seed}

    def submit_causal_fit(self, module_id: str | None = None) -> None:
        """Fits on ``module_id``'s FIFO (single-agent: the one module): in the causal actor
        (``causal_async``, returns at once) or here (blocking; the weights are applied before
        this returns)."""
        module_id = self._one_module(module_id)
        cfg, state = self.config, self.causal[module_id]
        obs, actions, rewards = state.fifo.arrays()
        if not cfg.causal_async:
            state.mark_submitted()
            self._apply_causal_weights(module_id, state.record_fit(run_fit(
                obs, actions, rewards, self._fit_options(), self.causal_fit_delay_s)))
            return
        if self.causal_worker is None:
            self.causal_worker = create_causal_worker(cfg.causal_worker_num_cpus,
                                                      cfg.causal_num_threads)
        state.mark_submitted(self.causal_worker.fit.remote(obs, actions, rewards,
                                                           self._fit_options(),
                                                           self.causal_fit_delay_s))

    def poll_causal_fit(self, module_id: str | None = None) -> None:
        """Takes ``module_id``'s finished fit's weights, never waiting; a dead worker is
        dropped (the next submission creates a new one) and the fit becomes due again."""
        module_id = self._one_module(module_id)
        state = self.causal[module_id]
        if state.pending is None:
            return
        ready, _ = ray.wait([state.pending], timeout=0)
        if not ready:
            return
        try:
            fit = ray.get(ready[0])
        except RayActorError:
            state.record_worker_death()
            self.causal_worker = None
            return
        self._apply_causal_weights(module_id, state.record_fit(fit))

    def _one_module(self, module_id: str | None) -> str:
        if module_id is not None:
            return module_id
        (module_id,) = self.causal  # single-agent (one module): no id needed
        return module_id

    def _apply_causal_weights(self, module_id: str, weights: np.ndarray) -> None:
        self.learner_group.foreach_learner(
            lambda learner, w=weights, m=module_id: learner.set_causal_weights(w, m))

    # -- soft resets (called from ACECallback.on_train_result) ------------------------------

    def learner_ace_stats(self) -> dict[str, dict]:
        """``{module_id: the learners' ACE counters}`` (all learners hold the same; the first
        one's)."""
        module_ids = list(self.causal)
        return next(iter(self.learner_group.foreach_learner(
            lambda learner: learner.module_ace_stats(module_ids)))).get()

    def maybe_reset(self, stats: dict, module_id: str | None = None) -> dict | None:
        """A soft reset of ``module_id`` (single-agent: the one module) on every learner when
        ``reset_interval`` of its gradient updates passed since its last one; the env runners
        get the reset weights at once. ``stats``: the module's learner counters. Returns its
        new counters, or None if no reset was due."""
        module_id = self._one_module(module_id)
        cfg = self.config
        if cfg.reset_interval == 0 or (
                stats["num_gradient_updates"] - stats["last_reset_update"] < cfg.reset_interval):
            return None
        low, high = cfg.perturb_factor_min, cfg.perturb_factor_max
        if cfg.reset_strength == "causal":
            factor = causal_perturb_factor(self.causal[module_id].weights, low, high)
        else:
            factor = perturb_factor(stats["dormancy_ratio"], low, high)
        # One seed for every learner: their fresh initialisations (and so their weights after
        # the reset) must be identical. Each module draws its own (its index in the entropy
        # when there are several).
        entropy = [cfg.seed if cfg.seed is not None else np.random.randint(2**31),
                   stats["num_resets"]]
        if not self.causal.single:
            entropy.append(list(self.causal).index(module_id))
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        results = self.learner_group.foreach_learner(
            lambda learner, f=factor, s=seed, m=module_id: (
                learner.soft_reset(f, s, m), learner.ace_stats(m))[1])
        # RLlib's sync is fire-and-forget and drops the call while the iteration's own
        # ``set_state`` is still in flight (one request per runner); a timeout makes it wait
        # for that one first, so the reset weights are always queued on every runner.
        self.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.learner_group, policies=[module_id],
            inference_only=True, timeout_seconds=cfg.env_runner_health_probe_timeout_s)
        return next(iter(results)).get()

    @override(SAC)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[ACE_ALGORITHM_STATE] = self.causal.get_state()
        return state

    @override(SAC)
    def set_state(self, state) -> None:
        super().set_state(state)
        if ACE_ALGORITHM_STATE in state:
            self.causal.set_state(state[ACE_ALGORITHM_STATE])
            # The learners restored their weights with their own state; make sure they use
            # the algorithm's (the two are written together, this only guards a mismatch).
            for module_id in self.causal:
                self._apply_causal_weights(module_id, self.causal[module_id].weights)

    @override(SAC)
    def cleanup(self) -> None:
        if self.causal_worker is not None:
            ray.kill(self.causal_worker)
            self.causal_worker = None
        super().cleanup()
