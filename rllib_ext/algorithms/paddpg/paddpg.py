"""PA-DDPG for parameterised action spaces: ``PADDPGConfig`` and ``PADDPG``.

Hausknecht & Stone 2016 ("Deep Reinforcement Learning in Parameterized Action Space"): a DDPG
actor outputs K discrete-action scores and all K actions' parameters, the action taken is the
argmax score with its parameters, and a critic Q(s, scores, params) trains the actor through
bounded outputs with inverting gradients (on both scores and parameters). Defaults are the
MP-DQN repository's ``run_platform_paddpg.py`` settings. The training step (flat replay that
also keeps the scores, several gradient steps per ``learner_group.update``) is shared with
P-DQN: :class:`~rllib_ext.core.parameterised.parameterised.ParameterisedActionAlgorithm`.
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.paddpg.paddpg_keys import ACTION_SCORES
from rllib_ext.core.parameterised.action_layout import ActionLayout
from rllib_ext.core.parameterised.parameterised import (
    ParameterisedActionAlgorithm,
    ParameterisedActionConfig,
)


class PADDPGConfig(ParameterisedActionConfig):
    """Configuration of PA-DDPG.

    .. code-block:: python

        from rllib_ext import PADDPGConfig

        config = (
            PADDPGConfig()
            .environment("rllib_ext/Platform-v0", env_config={"scale": True})
            .training(initial_params=[-0.8, -0.97222, 0.86047])
        )
        algo = config.build_algo()

    Defaults are the reference's Platform settings (batch 32, gamma 0.9, replay 10 000, 128
    transitions before learning, [256, 128] leaky-ReLU layers, lr 1e-4 / 1e-3, tau 0.01 / 0.01,
    OU parameter noise, ε 1 → 0.01 over 1000 episodes, gradient-norm clip 10, Adam betas
    (0.9, 0.999) as the Platform and Goal scripts pass them; the agent's own default, which
    its Soccer script keeps, is ``adam_betas=(0.95, 0.999)``). The reference's
    Goal settings: ``gamma=0.95, replay_capacity=20000, train_batch_size_per_learner=128,
    actor_hiddens=[128, 64], critic_hiddens=[128, 64], lr_actor=1e-7, lr_critic=1e-6,
    tau_actor=1e-4, grad_clip=1``.
    """

    learning_rate_knobs = ("lr_actor", "lr_critic")
    hidden_knobs = ("actor_hiddens", "critic_hiddens")
    polyak_knobs = ("tau_actor", "tau_critic")

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PADDPG)
        # Reference Platform values (run_platform_paddpg.py); the shared ones not listed here
        # (gamma 0.9, replay 10 000, OU noise, ε schedule, clip 10) match the P-DQN defaults.
        self.train_batch_size_per_learner = 32
        self.num_steps_sampled_before_learning_starts = 128
        self.activation = "leaky_relu"
        self.actor_hiddens = [256, 128]
        self.critic_hiddens = [256, 128]
        self.actor_output_init_std = 1e-4
        self.critic_output_init_std = 0.01
        self.lr_actor = 1e-4
        self.lr_critic = 1e-3
        self.tau_actor = 0.01
        self.tau_critic = 0.01

    @override(ParameterisedActionConfig)
    def training(
        self,
        *,
        actor_hiddens=NotProvided,
        critic_hiddens=NotProvided,
        actor_output_init_std=NotProvided,
        critic_output_init_std=NotProvided,
        lr_actor=NotProvided,
        lr_critic=NotProvided,
        tau_actor=NotProvided,
        tau_critic=NotProvided,
        **kwargs,
    ) -> PADDPGConfig:
        """Sets the training configuration.

        Args:
            actor_hiddens: Hidden layer widths of the actor's shared trunk ([256, 128]
                Platform, [128, 64] Goal).
            critic_hiddens: Hidden layer widths of the critic.
            actor_output_init_std: Std of the normal init of the actor's score and parameter
                heads (1e-4 reference); None = PyTorch default.
            critic_output_init_std: Std of the normal init of the critic's output (0.01).
            lr_actor: Adam step size of the actor (1e-4 Platform; 1e-7..1e-4).
            lr_critic: Adam step size of the critic (1e-3 Platform; 1e-6..1e-3).
            tau_actor: Polyak rate of the target actor per gradient step (0.01 Platform).
            tau_critic: Polyak rate of the target critic per gradient step (0.01).
            **kwargs: The shared settings of ``ParameterisedActionConfig.training`` (action
                layout, ``initial_params``, replay, ε schedule, parameter noise,
                ``action_gradient_strategy`` — applied to the scores and the parameters —,
                ``activation``) and ``AlgorithmConfig.training`` arguments: ``gamma`` (0.9
                Platform), ``train_batch_size_per_learner`` (32), ``grad_clip`` (norm clip per
                network, 10).
        """
        super().training(**kwargs)
        self._store_arguments(locals())
        return self

    @property
    @override(ParameterisedActionConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            "actor_hiddens": list(self.actor_hiddens),
            "critic_hiddens": list(self.critic_hiddens),
            "actor_output_init_std": self.actor_output_init_std,
            "critic_output_init_std": self.critic_output_init_std,
        }

    @override(ParameterisedActionConfig)
    def validate(self) -> None:
        super().validate()
        self.check_number("actor_output_init_std", low=0, low_open=True, none_ok=True,
                          example=1e-4)
        self.check_number("critic_output_init_std", low=0, low_open=True, none_ok=True,
                          example=0.01)

    @override(ParameterisedActionConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_ext.algorithms.paddpg.torch.default_paddpg_torch_rl_module import (
            DefaultPADDPGTorchRLModule,
        )

        return RLModuleSpec(module_class=DefaultPADDPGTorchRLModule)

    @override(ParameterisedActionConfig)
    def get_default_learner_class(self):
        from rllib_ext.algorithms.paddpg.torch.paddpg_torch_learner import PADDPGTorchLearner

        return PADDPGTorchLearner


class PADDPG(ParameterisedActionAlgorithm):
    """PA-DDPG on the replay training step. Tune name: ``"PADDPG"``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PADDPGConfig:
        return PADDPGConfig()

    @override(ParameterisedActionAlgorithm)
    def replay_extra_columns(self, layout: ActionLayout) -> dict[str, int]:
        # The critic sees the K scores the actor proposed (random on ε steps).
        return {ACTION_SCORES: layout.num_actions}
