"""P-DQN, MP-DQN and SP-DQN for parameterised action spaces: ``PDQNConfig`` and ``PDQN``.

Xiong et al. 2018 (P-DQN) and Bester, James & Konidaris 2019 (MP-DQN, SP-DQN), with
Hausknecht & Stone's inverting gradients on the action parameters. Defaults are the MP-DQN
run scripts' Platform settings (``run_platform_pdqn.py``); see ``PDQNConfig.training``.

One ``training_step``: sample ``rollout_fragment_length`` steps per env from the env runners,
store the transitions in a flat replay (:mod:`.replay`), then take
``updates_per_env_step`` x (new env steps) gradient steps of ``train_batch_size_per_learner``
transitions each in one ``learner_group.update`` call, and sync the weights.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_ext.algorithms.pdqn.action_layout import layout_from_space, param_boxes
from rllib_ext.algorithms.pdqn.pdqn_learner import NUM_EPISODES_LIFETIME as EPISODES_KEY
from rllib_ext.algorithms.pdqn.replay import TransitionReplay
from rllib_ext.algorithms.spaces import probe_env_spaces
from rllib_ext.hooks import STRATEGIES

VARIANTS = ("pdqn", "mpdqn", "spdqn")
NOISES = ("ou", "gaussian", "uniform", "none")
WEIGHTINGS = ("sum", "weighted", "average", "random_weighted")
DECAY_UNITS = ("episode", "step")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
REPLAY_SIZE_KEY = "replay_size"


class PDQNConfig(AlgorithmConfig):
    """Configuration of the P-DQN family (``variant`` = "pdqn" | "mpdqn" | "spdqn").

    .. code-block:: python

        from rllib_ext import PDQNConfig

        config = (
            PDQNConfig()
            .environment("rllib_ext/Platform-v0", env_config={"scale": True})
            .training(variant="mpdqn")
        )
        algo = config.build_algo()

    Reference defaults (MP-DQN scripts) for Platform are the defaults here; for Goal use
    ``gamma=0.95, lr_param=1e-5, replay_capacity=20000, num_steps_sampled_before_learning_starts
    =128, grad_clip=1, q_hiddens=[256], param_hiddens=[256], q_output_init_std=1e-5,
    param_output_init_std=1e-5`` (see ``configs/pdqn/``).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PDQN)
        # AlgorithmConfig overrides (reference Platform values).
        self.gamma = 0.9
        self.lr = None  # two optimizers with their own rates: lr_q and lr_param
        self.train_batch_size_per_learner = 128
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.rollout_fragment_length = 1
        self.num_steps_sampled_before_learning_starts = 500
        # P-DQN settings.
        self.variant = "mpdqn"
        self.q_hiddens = [128]
        self.param_hiddens = [128]
        self.activation = "relu"
        self.q_output_init_std = None
        self.param_output_init_std = 1e-4
        self.initial_params = None
        self.param_layout = None
        self.lr_q = 1e-3
        self.lr_param = 1e-4
        self.tau_q = 0.1
        self.tau_param = 0.001
        self.replay_capacity = 10_000
        self.updates_per_env_step = 1.0
        self.epsilon_initial = 1.0
        self.epsilon_final = 0.01
        self.epsilon_decay_duration = 1000
        self.epsilon_decay_unit = "episode"
        self.exploration_noise = "ou"
        self.ou_theta = 0.15
        self.ou_sigma = 1e-4
        self.gaussian_sigma = 0.1
        self.action_gradient_strategy = "invert"
        self.param_loss_weighting = "sum"
        self.indexed = False
        self.zero_index_gradients = False

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        variant=NotProvided,
        q_hiddens=NotProvided,
        param_hiddens=NotProvided,
        activation=NotProvided,
        q_output_init_std=NotProvided,
        param_output_init_std=NotProvided,
        initial_params=NotProvided,
        param_layout=NotProvided,
        lr_q=NotProvided,
        lr_param=NotProvided,
        tau_q=NotProvided,
        tau_param=NotProvided,
        replay_capacity=NotProvided,
        updates_per_env_step=NotProvided,
        num_steps_sampled_before_learning_starts=NotProvided,
        epsilon_initial=NotProvided,
        epsilon_final=NotProvided,
        epsilon_decay_duration=NotProvided,
        epsilon_decay_unit=NotProvided,
        exploration_noise=NotProvided,
        ou_theta=NotProvided,
        ou_sigma=NotProvided,
        gaussian_sigma=NotProvided,
        action_gradient_strategy=NotProvided,
        param_loss_weighting=NotProvided,
        indexed=NotProvided,
        zero_index_gradients=NotProvided,
        **kwargs,
    ) -> PDQNConfig:
        """Sets the training configuration.

        Args:
            variant: How action parameters reach the Q-network. "pdqn": all parameters in one
                pass (Xiong et al.); "mpdqn" (default, as the reference scripts): one pass per
                action seeing only its own parameters; "spdqn": one Q sub-network per action
                (slower).
            q_hiddens: Hidden layer widths of the Q-network, e.g. [128] (Platform), [256]
                (Goal).
            param_hiddens: Hidden layer widths of the parameter network.
            activation: "relu" (default), "leaky_relu" (slope 0.01) or "tanh".
            q_output_init_std: Std of the Q output layer's normal init; None = PyTorch default.
            param_output_init_std: Std of the parameter head's normal init (1e-4 Platform,
                1e-5 Goal); None = zeros.
            initial_params: Initial action parameters (all K actions, normalised to [-1, 1])
                carried by the frozen passthrough layer, e.g. [-0.8, -0.97222, 0.86047] for
                Platform (run(3), hop(10), leap(400)); None = zeros.
            param_layout: Parameters per discrete action [P_1, ..., P_K], only for a flat
                ``Tuple(Discrete(K), Box(P))`` action space (entries may be 0).
            lr_q: Adam step size of the Q-network (1e-3 reference; 1e-4..1e-3).
            lr_param: Adam step size of the parameter network (1e-4 Platform, 1e-5 Goal).
            tau_q: Polyak rate of the Q target network per gradient step (0.1 reference).
            tau_param: Polyak rate of the parameter target network (0.001 reference).
            replay_capacity: Transitions kept in replay (10 000 Platform, 20 000 Goal).
            updates_per_env_step: Replay ratio: gradient steps per sampled env step (1.0 as
                the reference; 0.25..4).
            num_steps_sampled_before_learning_starts: Env steps collected before the first
                update (500 Platform, 128 Goal).
            epsilon_initial: Starting probability of a uniformly random discrete action (1.0).
            epsilon_final: Final exploration probability (0.01).
            epsilon_decay_duration: Episodes (or env steps) of linear decay (1000 episodes).
            epsilon_decay_unit: "episode" (reference) or "step".
            exploration_noise: Parameter exploration. "ou" (reference: Ornstein-Uhlenbeck on
                the chosen action's parameters, theta 0.15, sigma 1e-4), "gaussian" (sigma
                ``gaussian_sigma``), "uniform" (resample all parameters uniformly on
                exploratory steps), "none".
            ou_theta: OU mean-reversion rate (0.15).
            ou_sigma: OU noise scale in normalised units (1e-4 reference; up to ~0.2).
            gaussian_sigma: Std of Gaussian parameter noise (0.05..0.3).
            action_gradient_strategy: Bound handling of dQ/dx: "invert" (Hausknecht & Stone,
                default), "zero", "squash" (tanh-bounded parameter outputs) or "none".
            param_loss_weighting: How the K Q-values enter the parameter loss: "sum"
                (reference default), "weighted" (by batch action frequency), "average",
                "random_weighted".
            indexed: Use only Q(s, a_b) of the action taken in the parameter loss.
            zero_index_gradients: Zero dQ/dx for parameters of actions other than a_b.
            **kwargs: ``AlgorithmConfig.training`` arguments; P-DQN reads ``gamma`` (0.9
                Platform, 0.95 Goal), ``train_batch_size_per_learner`` (128), ``grad_clip``
                (norm clip per network: 10 Platform, 1 Goal).
        """
        super().training(**kwargs)
        # Every keyword argument above is stored under its own name (snapshot of the args).
        for name, value in locals().items():
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)
        return self

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            "variant": self.variant,
            "q_hiddens": list(self.q_hiddens),
            "param_hiddens": list(self.param_hiddens),
            "activation": self.activation,
            "q_output_init_std": self.q_output_init_std,
            "param_output_init_std": self.param_output_init_std,
            "initial_params": self.initial_params,
            "param_layout": self.param_layout,
            "squash": self.action_gradient_strategy == "squash",
            "noise": self.exploration_noise,
            "ou_theta": self.ou_theta,
            "ou_sigma": self.ou_sigma,
            "gaussian_sigma": self.gaussian_sigma,
            "epsilon_initial": self.epsilon_initial,
        }

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_ext.algorithms.pdqn.torch.default_pdqn_torch_rl_module import (
            DefaultPDQNTorchRLModule,
        )

        return RLModuleSpec(module_class=DefaultPDQNTorchRLModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import PDQNTorchLearner

        return PDQNTorchLearner

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()

        def choice(name, options):
            if getattr(self, name) not in options:
                self._value_error(
                    f"{name}={getattr(self, name)!r} is not one of {list(options)}; "
                    f"call config.training({name}=...) with one of them."
                )

        def positive(name, *, allow_zero=False, at_most=None):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                value >= 0 if allow_zero else value > 0) and (at_most is None or value <= at_most)
            if not ok:
                bound = f" and <= {at_most}" if at_most is not None else ""
                self._value_error(
                    f"{name}={value!r} must be {'>= 0' if allow_zero else '> 0'}{bound}; "
                    f"fix it with config.training({name}=...)."
                )

        if self.framework_str != "torch":
            self._value_error(
                "PDQN supports framework='torch' only; call config.framework('torch')."
            )
        if self.lr is not None:
            self._value_error(
                f"lr={self.lr} is not used: P-DQN has two optimizers; set "
                "config.training(lr_q=..., lr_param=...) and leave lr=None."
            )
        choice("variant", VARIANTS)
        choice("exploration_noise", NOISES)
        choice("param_loss_weighting", WEIGHTINGS)
        choice("epsilon_decay_unit", DECAY_UNITS)
        choice("action_gradient_strategy", STRATEGIES)
        choice("activation", ACTIVATIONS)
        for name in ("lr_q", "lr_param", "updates_per_env_step", "ou_theta", "gaussian_sigma"):
            positive(name)
        positive("ou_sigma", allow_zero=True)
        for name in ("tau_q", "tau_param"):
            positive(name, at_most=1.0)
        for name in ("epsilon_initial", "epsilon_final"):
            positive(name, allow_zero=True, at_most=1.0)
        if not 0.0 <= self.gamma <= 1.0:
            self._value_error(f"gamma={self.gamma} is outside [0, 1]; e.g. training(gamma=0.9).")
        for name in ("q_hiddens", "param_hiddens"):
            widths = getattr(self, name)
            if not isinstance(widths, (list, tuple)) or not all(
                isinstance(w, int) and w > 0 for w in widths
            ):
                self._value_error(f"{name}={widths!r} must be a list of positive ints, e.g. [128].")
        if int(self.replay_capacity) < self.train_batch_size_per_learner:
            self._value_error(
                f"replay_capacity={self.replay_capacity} is smaller than one batch "
                f"({self.train_batch_size_per_learner}); raise it, e.g. replay_capacity=10000."
            )
        if self.num_steps_sampled_before_learning_starts > self.replay_capacity:
            self._value_error(
                f"num_steps_sampled_before_learning_starts="
                f"{self.num_steps_sampled_before_learning_starts} exceeds replay_capacity="
                f"{self.replay_capacity}: learning would never start. Lower it or raise "
                "replay_capacity."
            )
        if self.num_steps_sampled_before_learning_starts < self.train_batch_size_per_learner:
            self._value_error(
                f"num_steps_sampled_before_learning_starts="
                f"{self.num_steps_sampled_before_learning_starts} must be at least one batch "
                f"({self.train_batch_size_per_learner}) so the first update has data."
            )
        if self.is_multi_agent:
            self._value_error("PDQN supports single-agent envs only; remove config.multi_agent().")
        if self.env is not None:
            self.validate_spaces(*probe_env_spaces(self))

    def validate_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Rejects spaces the networks cannot handle, with the accepted forms and the fix."""
        if not (isinstance(observation_space, gym.spaces.Box)
                and len(observation_space.shape) == 1):
            self._value_error(
                f"PDQN needs a 1-D Box observation space, got {observation_space}. For the "
                "Platform and Goal envs use env_config={'scale': True}; otherwise flatten the "
                "observations (e.g. gymnasium.wrappers.FlattenObservation)."
            )
        try:
            layout = layout_from_space(action_space, self.param_layout)
        except ValueError as e:
            self._value_error(str(e))
        if layout.total_params == 0:
            self._value_error(f"{action_space} has no continuous parameters; use DQN instead.")
        if not self.normalize_actions:
            boxes = [action_space.spaces[1]] if layout.form == "flat_box" else param_boxes(
                action_space, layout)
            if any(np.any(b.low != -1) or np.any(b.high != 1) for b in boxes):
                self._value_error(
                    "The learner works in [-1, 1] parameter units; keep "
                    "config.environment(normalize_actions=True) (the default) or give the env "
                    "parameter Boxes in [-1, 1]."
                )
        if self.initial_params is not None and len(self.initial_params) != layout.total_params:
            self._value_error(
                f"initial_params has {len(self.initial_params)} values but the action space has "
                f"{layout.total_params} parameters ({list(layout.param_dims)} per action)."
            )


class PDQN(Algorithm):
    """The P-DQN family on a lean replay path. Tune name: ``"PDQN"``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PDQNConfig:
        return PDQNConfig()

    @override(Algorithm)
    def setup(self, config: PDQNConfig) -> None:
        super().setup(config)
        obs_space, action_space = probe_env_spaces(self.config)
        self.action_layout = layout_from_space(action_space, self.config.param_layout)
        self.replay = TransitionReplay(
            self.config.replay_capacity, int(np.prod(obs_space.shape)),
            self.action_layout.total_params, seed=self.config.seed,
        )
        self._update_credit = 0.0  # fractional gradient steps owed (updates_per_env_step)

    @override(Algorithm)
    def training_step(self) -> None:
        cfg = self.config
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                concat=True,
                sample_timeout_s=cfg.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            new_steps = self.replay.add_episodes(episodes, self.action_layout)
        self.metrics.log_value(REPLAY_SIZE_KEY, len(self.replay), window=1)

        env_steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME),
                                      default=0)
        # Counted on the replay, not the lifetime steps: the replay is not checkpointed, so a
        # restored algorithm refills it before learning again.
        if len(self.replay) < cfg.num_steps_sampled_before_learning_starts:
            return
        self._update_credit += new_steps * cfg.updates_per_env_step
        num_updates = int(self._update_credit)
        if num_updates == 0:
            return
        self._update_credit -= num_updates

        batch_size = cfg.total_train_batch_size
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            data = self.replay.sample(num_updates * batch_size)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=MultiAgentBatch({"default_policy": SampleBatch(data)},
                                      env_steps=num_updates * batch_size),
                # Consecutive minibatches of one batch each: num_updates gradient steps.
                minibatch_size=cfg.train_batch_size_per_learner,
                num_epochs=1,
                shuffle_batch_per_epoch=False,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps,
                    EPISODES_KEY: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_EPISODES_LIFETIME), default=0),
                },
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0].keys()) - {ALL_MODULES},
                inference_only=True,
            )
