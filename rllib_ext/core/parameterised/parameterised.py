"""What every parameterised-action algorithm shares: ``ParameterisedActionConfig`` (action
layout, replay, ε-greedy schedule, parameter noise, action-gradient strategy, and their
validation) and ``ParameterisedActionAlgorithm`` (the off-policy training step).

The training step is the one of :mod:`rllib_ext.core.replay_training` over the flat
replay of :mod:`.replay` (uniform, as the reference), plus the ε schedule pushed to the env
runners.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import REPLAY_BUFFER_SAMPLE_TIMER, TIMERS

from rllib_ext.core.module_replays import ModuleReplays, module_chunks, trained_module_ids
from rllib_ext.core.non_finite import NonFiniteGuardConfig
from rllib_ext.core.parameterised.action_layout import (
    ActionLayout,
    layout_from_space,
    param_boxes,
)
from rllib_ext.core.parameterised.parameterised_learner import (
    EPSILON_BUFFER,
    scheduled_epsilon,
)
from rllib_ext.core.parameterised.parameterised_replay import ParameterisedReplay
from rllib_ext.core.plain_config import PlainDictConfig
from rllib_ext.core.random_streams import SeparateEvaluationRandomness
from rllib_ext.core.replay_training import ReplayTrainingStep
from rllib_ext.core.rllib_compat import config_value_error, user_model_config
from rllib_ext.core.spaces import FLATTEN_OBSERVATIONS_FIX, policy_spaces
from rllib_ext.core.threads import limit_torch_threads
from rllib_ext.core.validation import KnobChecks, is_real
from rllib_ext.hooks import STRATEGIES

NOISES = ("ou", "gaussian", "uniform", "none")
DECAY_UNITS = ("episode", "step")
EPSILON_SCHEDULES = ("linear", "exponential")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")


#: RLlib ``model_config`` keys of MLP stacks: the parameterised networks take their layers from
#: training knobs instead, so these are refused rather than silently ignored.
MLP_MODEL_KEYS = ("fcnet_hiddens", "fcnet_activation", "head_fcnet_hiddens",
                  "head_fcnet_activation")


class ParameterisedActionConfig(PlainDictConfig, KnobChecks, NonFiniteGuardConfig, AlgorithmConfig):
    """Knobs shared by :class:`~rllib_ext.PDQNConfig` and :class:`~rllib_ext.PADDPGConfig`.

    Subclasses set ``learning_rate_knobs`` (the names of their per-network step sizes, which
    replace ``lr``), ``hidden_knobs`` (their layer-width lists) and ``polyak_knobs`` (their
    target-network rates) and add their own knobs.
    """

    #: Names of the per-network learning rates (``lr`` must stay None).
    learning_rate_knobs: tuple[str, ...] = ()
    #: Names of the hidden-layer width lists.
    hidden_knobs: tuple[str, ...] = ()
    #: Names of the Polyak (target-network) rates, each in (0, 1].
    polyak_knobs: tuple[str, ...] = ()

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        # Greedy evaluation (RLlib's evaluation explores unless told not to).
        self.evaluation_config = {"explore": False}
        # AlgorithmConfig overrides (the MP-DQN scripts' Platform values).
        self.gamma = 0.9
        self.lr = None  # one optimizer per network, each with its own rate
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.rollout_fragment_length = 1
        self.num_steps_sampled_before_learning_starts = 500
        # Shared settings.
        self.activation = "relu"
        self.initial_params = None
        self.initial_param_weights = None
        self.param_layout = None
        self.replay_capacity = 10_000
        self.store_replay_in_checkpoint = False
        self.reward_scale = 1.0
        self.adam_betas = (0.9, 0.999)
        self.updates_per_env_step = 1.0
        self.epsilon_initial = 1.0
        self.epsilon_final = 0.01
        self.epsilon_decay_duration = 1000
        self.epsilon_decay_unit = "episode"
        self.epsilon_schedule = "linear"
        self.exploration_noise = "ou"
        self.ou_theta = 0.15
        self.ou_sigma = 1e-4
        self.gaussian_sigma = 0.1
        self.action_gradient_strategy = "invert"

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        activation=NotProvided,
        initial_params=NotProvided,
        initial_param_weights=NotProvided,
        param_layout=NotProvided,
        replay_capacity=NotProvided,
        store_replay_in_checkpoint=NotProvided,
        reward_scale=NotProvided,
        adam_betas=NotProvided,
        updates_per_env_step=NotProvided,
        num_steps_sampled_before_learning_starts=NotProvided,
        epsilon_initial=NotProvided,
        epsilon_final=NotProvided,
        epsilon_decay_duration=NotProvided,
        epsilon_decay_unit=NotProvided,
        epsilon_schedule=NotProvided,
        exploration_noise=NotProvided,
        ou_theta=NotProvided,
        ou_sigma=NotProvided,
        gaussian_sigma=NotProvided,
        action_gradient_strategy=NotProvided,
        **kwargs,
    ) -> ParameterisedActionConfig:
        """Sets the settings every parameterised-action algorithm shares.

        Args:
            activation: Hidden-layer activation: "relu", "leaky_relu" (slope 0.01) or "tanh".
            initial_params: Initial action parameters (all K actions, normalised to [-1, 1])
                carried by a frozen passthrough layer, e.g. [-0.8, -0.97222, 0.86047] for
                Platform (run(3), hop(10), leap(400)); None = zeros.
            initial_param_weights: Weights of that frozen passthrough layer, one row of
                obs-size numbers per action parameter (all K actions, in order): the initial
                parameters become ``initial_params + W @ obs``, a hand-made linear policy. The
                reference's Goal settings make the kick-to target follow the ball and the
                keeper this way (configs/pdqn/goal.yaml). None = zeros (constant parameters).
            param_layout: Parameters per discrete action [P_1, ..., P_K], only for a flat
                ``Tuple(Discrete(K), Box(P))`` action space (entries may be 0).
            replay_capacity: Transitions kept in replay (10 000 Platform, 20 000 Goal).
            store_replay_in_checkpoint: True: checkpoints hold the replay's contents (its
                filled rows, write position and sampling RNG), and a restored algorithm
                learns on at once instead of refilling the replay to
                ``num_steps_sampled_before_learning_starts`` first. Disk per checkpoint: up
                to ``replay_capacity`` x row size, a row being 4 bytes x (2 x obs size + P +
                4) plus any extra columns (Platform: 10 000 x 100 B = 1 MB). False (default):
                the replay is not saved.
            reward_scale: Factor on the rewards in the critic's TD target only (training);
                returns, metrics and evaluation stay in the env's units. The reference
                scripts use 1 (Platform, rewards <= 1) and 1/50 = 0.02 (Goal, +50 for a goal).
            adam_betas: (beta1, beta2) of every network's Adam optimizer, each in [0, 1);
                (0.9, 0.999) as the reference's P-DQN agents and its Platform and Goal PA-DDPG
                scripts (the PA-DDPG agent's own default, kept by its Soccer script, is
                (0.95, 0.999)).
            updates_per_env_step: Replay ratio: gradient steps per sampled env step (1.0 as
                the reference; 0.25..4).
            num_steps_sampled_before_learning_starts: Transitions in replay before the first
                update (500 P-DQN Platform, 128 Goal and PA-DDPG).
            epsilon_initial: Starting probability of an exploratory discrete action (1.0).
            epsilon_final: Final exploration probability (0.01).
            epsilon_decay_duration: Episodes (or env steps) of linear decay (1000 episodes); the
                time constant of an exponential one (DI-engine: 100 000 env steps).
            epsilon_decay_unit: "episode" (reference) or "step".
            epsilon_schedule: "linear" (the reference: from ``epsilon_initial`` down to
                ``epsilon_final`` over ``epsilon_decay_duration``, then constant) or
                "exponential" (DI-engine's gym-hybrid configs: ``final + (initial - final) *
                exp(-count / epsilon_decay_duration)``, 0.43 after one time constant from
                1.0 to 0.1).
            exploration_noise: Parameter exploration. "ou" (reference: Ornstein-Uhlenbeck on
                the chosen action's parameters, theta 0.15, sigma 1e-4), "gaussian" (sigma
                ``gaussian_sigma``), "uniform" (resample all parameters uniformly on
                exploratory steps), "none".
            ou_theta: OU mean-reversion rate (0.15).
            ou_sigma: OU noise scale in normalised units (1e-4 reference; up to ~0.2).
            gaussian_sigma: Std of Gaussian parameter noise (0.05..0.3).
            action_gradient_strategy: Bound handling of dQ/da before it reaches the actor:
                "invert" (Hausknecht & Stone, default), "zero", "squash" (tanh-bounded
                outputs) or "none" (see :mod:`rllib_ext.hooks`).
            **kwargs: ``AlgorithmConfig.training`` arguments, e.g. ``gamma`` (0.9 Platform,
                0.95 Goal), ``train_batch_size_per_learner``, ``grad_clip`` (norm clip per
                network: 10 Platform, 1 Goal).
        """
        super().training(**kwargs)
        self._store_arguments(locals())
        return self

    def _store_arguments(self, arguments: dict) -> None:
        """Stores every keyword argument of a ``training()`` under its own name."""
        for name, value in arguments.items():
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            "activation": self.activation,
            "initial_params": self.initial_params,
            "initial_param_weights": self.initial_param_weights,
            "param_layout": self.param_layout,
            "squash": self.action_gradient_strategy == "squash",
            "noise": self.exploration_noise,
            "ou_theta": self.ou_theta,
            "ou_sigma": self.ou_sigma,
            "gaussian_sigma": self.gaussian_sigma,
            "epsilon_initial": self.epsilon_initial,
        }

    # ----------------------------------------------------------------------------- validation
    @override(AlgorithmConfig)
    def validate(self) -> None:
        # Ours first: RLlib's own validate() trips over some bad values with unclear errors.
        self.check_rllib_knobs(learning_rates=self.learning_rate_knobs, lr_example=1e-4,
                               gamma_example=0.9)
        for name in self.hidden_knobs:  # before RLlib builds the model config from them
            self.check_widths(name, example=(128,))
        super().validate()
        algo = self.algo_class.__name__ if self.algo_class else type(self).__name__
        if self.framework_str != "torch":
            config_value_error(self,
                f"{algo} supports framework='torch' only; call config.framework('torch')."
            )
        if self.lr is not None:
            rates = ", ".join(f"{name}=..." for name in self.learning_rate_knobs)
            config_value_error(self,
                f"lr={self.lr} is not used: {algo} has one optimizer per network; set "
                f"config.training({rates}) and leave lr=None."
            )
        self.check_choice("exploration_noise", NOISES)
        self.check_choice("epsilon_decay_unit", DECAY_UNITS)
        self.check_choice("epsilon_schedule", EPSILON_SCHEDULES)
        self.check_choice("action_gradient_strategy", STRATEGIES)
        self.check_choice("activation", ACTIVATIONS)
        self.check_bool("store_replay_in_checkpoint")
        self.check_number("updates_per_env_step", low=0, low_open=True, example=1.0)
        self.check_number("reward_scale", low=0, low_open=True, example=1.0)
        self.check_number("ou_theta", low=0, low_open=True, example=0.15)
        self.check_number("ou_sigma", low=0, example=1e-4)
        self.check_number("gaussian_sigma", low=0, low_open=True, example=0.1)
        for name in self.polyak_knobs:
            self.check_number(name, low=0, high=1, low_open=True, example=0.01)
        for name in ("epsilon_initial", "epsilon_final"):
            self.check_number(name, low=0, high=1, example=getattr(type(self)(), name))
        if self.epsilon_final > self.epsilon_initial:
            config_value_error(self,
                f"epsilon_final={self.epsilon_final} exceeds epsilon_initial="
                f"{self.epsilon_initial}: exploration would grow during training; fix it with "
                "config.training(epsilon_initial=1.0, epsilon_final=0.01).")
        self.check_number("epsilon_decay_duration", low=0, integer=True, example=1000)
        self.check_number("replay_capacity", low=1, integer=True, example=10_000)
        self.check_number("num_steps_sampled_before_learning_starts", low=0, integer=True,
                          example=500)
        self.check_numbers("initial_params", low=-1, high=1, example=None)
        self.check_numbers("initial_param_weights", example=None)
        self.check_param_layout()
        betas = self.adam_betas
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(
                is_real(b) and 0 <= b < 1 for b in betas)):
            self._knob_error("adam_betas", betas, "two numbers in [0, 1)", (0.9, 0.999))
        mlp_keys = sorted(key for key in user_model_config(self) if key in MLP_MODEL_KEYS)
        if mlp_keys:
            config_value_error(self,
                f"model_config sets {mlp_keys}, which these networks do not read: their layers "
                f"are training knobs ({', '.join(self.hidden_knobs)}, activation), as in the "
                "reference scripts. model_config configures only the image encoder "
                "(conv_filters, conv_activation, ...); set the layers with config.training().")
        if self.replay_capacity < self.train_batch_size_per_learner:
            config_value_error(self,
                f"replay_capacity={self.replay_capacity} is smaller than one batch "
                f"({self.train_batch_size_per_learner}); raise it, e.g. replay_capacity=10000."
            )
        if self.num_steps_sampled_before_learning_starts > self.replay_capacity:
            config_value_error(self,
                f"num_steps_sampled_before_learning_starts="
                f"{self.num_steps_sampled_before_learning_starts} exceeds replay_capacity="
                f"{self.replay_capacity}: learning would never start. Lower it or raise "
                "replay_capacity."
            )
        if self.num_steps_sampled_before_learning_starts < self.train_batch_size_per_learner:
            config_value_error(self,
                f"num_steps_sampled_before_learning_starts="
                f"{self.num_steps_sampled_before_learning_starts} must be at least one batch "
                f"({self.train_batch_size_per_learner}) so the first update has data."
            )
        if self.env is not None:
            for observation_space, action_space in policy_spaces(self).values():
                self.validate_spaces(observation_space, action_space)

    def validate_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Rejects spaces the networks cannot handle, with the accepted forms and the fix."""
        algo = self.algo_class.__name__ if self.algo_class else type(self).__name__
        image = isinstance(observation_space, gym.spaces.Box) and len(
            observation_space.shape) == 3
        if not (isinstance(observation_space, gym.spaces.Box)
                and len(observation_space.shape) in (1, 3)):
            config_value_error(self,
                f"{algo} needs a 1-D Box observation space or an (H, W, C) image Box (after "
                f"the env-to-module connectors), got {observation_space}. For the Platform "
                f"and Goal envs use env_config={{'scale': True}}; otherwise "
                f"{FLATTEN_OBSERVATIONS_FIX}."
            )
        if image and not np.issubdtype(observation_space.dtype, np.floating):
            config_value_error(self,
                f"{algo} encodes image observations with RLlib's CNN, which needs float "
                f"pixels; got dtype {observation_space.dtype}. Scale the frames to float32 in "
                "[0, 1] in the env or a connector (e.g. a gymnasium ObservationWrapper)."
            )
        if image:
            from rllib_ext.core.parameterised.torch.networks import ObservationEncoder

            try:
                ObservationEncoder(observation_space, action_space, self.model_config)
            except (ValueError, RuntimeError, TypeError) as e:
                config_value_error(self,
                    f"{algo} could not build RLlib's CNN encoder for {observation_space} from "
                    f"model_config (conv_filters={self.model_config.get('conv_filters')}): "
                    f"{e}. Give filters that fit the image, [[channels, [kh, kw], stride], ...], "
                    "e.g. config.rl_module(model_config={'conv_filters': [[16, [4, 4], 2], "
                    "[32, [4, 4], 2]]})."
                )
        if image and self.initial_param_weights is not None:
            config_value_error(self,
                "initial_param_weights is a linear policy on the observation vector; with "
                "image observations the passthrough layer reads CNN features, which have no "
                "hand-made weights. Drop initial_param_weights (initial_params still apply)."
            )
        try:
            layout = layout_from_space(action_space, self.param_layout)
        except ValueError as e:
            config_value_error(self, str(e))
        if layout.total_params == 0:
            config_value_error(
                self, f"{action_space} has no continuous parameters; use DQN instead.")
        if not self.normalize_actions:
            boxes = [action_space.spaces[1]] if layout.form == "flat_box" else param_boxes(
                action_space, layout)
            if any(np.any(b.low != -1) or np.any(b.high != 1) for b in boxes):
                config_value_error(self,
                    "The learner works in [-1, 1] parameter units; keep "
                    "config.environment(normalize_actions=True) (the default) or give the env "
                    "parameter Boxes in [-1, 1]."
                )
        if self.initial_params is not None and len(self.initial_params) != layout.total_params:
            config_value_error(self,
                f"initial_params has {len(self.initial_params)} values but the action space has "
                f"{layout.total_params} parameters ({list(layout.param_dims)} per action)."
            )
        if self.initial_param_weights is not None:
            shape = np.shape(np.asarray(self.initial_param_weights, dtype=object))
            wanted = (layout.total_params, int(observation_space.shape[0]))
            if shape != wanted:
                config_value_error(self,
                    f"initial_param_weights has shape {shape}, but the passthrough layer maps "
                    f"{wanted[1]} observation features to {wanted[0]} action parameters: give "
                    f"{wanted[0]} rows of {wanted[1]} numbers ({list(layout.param_dims)} "
                    "parameters per action), or None."
                )


class ParameterisedActionAlgorithm(SeparateEvaluationRandomness, ReplayTrainingStep, Algorithm):
    """The off-policy training step over a :class:`ParameterisedReplay` (see the module
    docstring)."""

    def replay_extra_columns(self, layout: ActionLayout) -> dict[str, int]:
        """``{extra_model_outputs key: width}`` the replay keeps besides the transition."""
        return {}

    @override(Algorithm)
    def setup(self, config: ParameterisedActionConfig) -> None:
        limit_torch_threads(config)
        super().setup(config)
        replays = {}
        for index, module_id in enumerate(self.trained_module_ids()):
            obs_space, action_space = self.spaces[module_id]
            # Module i samples with seed + i: the single-agent replay keeps the seed.
            seed = None if self.config.seed is None else self.config.seed + index
            layout = layout_from_space(action_space, self.config.param_layout)
            replays[module_id] = ParameterisedReplay(
                self.config.replay_capacity, int(np.prod(obs_space.shape)), layout,
                extra_columns=self.replay_extra_columns(layout), seed=seed)
        self.replay = ModuleReplays(replays)
        self._runners_epsilon: float | None = None  # the ε last set on the env runners

    def trained_module_ids(self) -> list[str]:
        """The RL modules the learners train (``policies_to_train``; all by default), in the
        order of ``config.policies``: each gets a replay."""
        return trained_module_ids(self.spaces, self.config.policies_to_train)

    def set_runners_epsilon(self, epsilon: float) -> None:
        """Sets ε on every env runner when the schedule moved (once per episode while it
        decays), learning or not: the reference decays ε per episode from episode 0, and the
        weight sync after an update only starts once learning does. The learners compute the
        same value from the same counts, so the weights they sync carry it too."""
        if epsilon == self._runners_epsilon:
            return

        trained = set(self.replay.replays)

        def set_epsilon(env_runner):
            # The trained modules only: a frozen policy (not in policies_to_train) keeps the
            # exploration its weights came with. A local runner beside remote ones has none.
            module = env_runner.module
            if module is None:
                return
            modules = module.items() if isinstance(module, MultiRLModule) else [
                (next(iter(trained)), module)]
            for module_id, single in modules:
                if module_id in trained:
                    getattr(single, EPSILON_BUFFER).fill_(epsilon)

        self.env_runner_group.foreach_env_runner(set_epsilon, local_env_runner=True)
        self._runners_epsilon = epsilon

    @override(Algorithm)
    def restore_env_runners(self, env_runner_group) -> list[int]:
        restored = super().restore_env_runners(env_runner_group)
        if restored and env_runner_group is self.env_runner_group:
            # Restored (or replaced) runners hold the learners' ε: set the schedule's again.
            self._runners_epsilon = None
        return restored

    @override(ReplayTrainingStep)
    def store_episodes(self, episodes) -> int:
        """Every new step of the sampled chunks into its module's replay (multi-agent chunks
        split by agent); returns the env steps."""
        chunks, env_steps = module_chunks(episodes, self.replay.replays)
        for module_id, chunk in chunks:
            self.replay[module_id].add_episodes([chunk])
        return env_steps

    @override(Algorithm)
    def training_step(self) -> None:
        self.learn_cycles(self._learn_after_sampling)

    def _learn_after_sampling(self, new_steps: int, timesteps: dict, reduce: bool) -> bool:
        """One cycle's learning (:meth:`ReplayTrainingStep.learn_cycles`): ε for the
        runners, the owed gradient steps, the weight sync. True if it took gradient steps."""
        self.set_runners_epsilon(scheduled_epsilon(self.config, timesteps))
        num_updates = self.owed_updates(new_steps)
        if num_updates == 0:
            return False
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            data = self.replay.sample_modules(
                num_updates * self.config.total_train_batch_size)
        self.learn_on(data, timesteps, reduce=reduce)
        self.sync_runner_weights(data)
        return True
