"""P-DQN, MP-DQN and SP-DQN for parameterised action spaces: ``PDQNConfig`` and ``PDQN``.

Xiong et al. 2018 (P-DQN) and Bester, James & Konidaris 2019 (MP-DQN, SP-DQN), with
Hausknecht & Stone's inverting gradients on the action parameters. Defaults are the MP-DQN
run scripts' Platform settings (``run_platform_pdqn.py``); see ``PDQNConfig.training``. The
training step (flat replay, several gradient steps per ``learner_group.update``) is shared with
PA-DDPG: :class:`~rllib_ext.core.parameterised.parameterised.ParameterisedActionAlgorithm`.
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_ext.core.parameterised.parameterised import (
    ParameterisedActionAlgorithm,
    ParameterisedActionConfig,
)

VARIANTS = ("pdqn", "mpdqn", "spdqn")
WEIGHTINGS = ("sum", "weighted", "average", "random_weighted")

class PDQNConfig(ParameterisedActionConfig):
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

    learning_rate_knobs = ("lr_q", "lr_param")
    hidden_knobs = ("q_hiddens", "param_hiddens")
    polyak_knobs = ("tau_q", "tau_param")

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PDQN)
        # Reference Platform values; the shared ones are set by ParameterisedActionConfig.
        self.train_batch_size_per_learner = 128
        self.variant = "mpdqn"
        self.q_hiddens = [128]
        self.param_hiddens = [128]
        self.q_output_init_std = None
        self.param_output_init_std = 1e-4
        self.lr_q = 1e-3
        self.lr_param = 1e-4
        self.tau_q = 0.1
        self.tau_param = 0.001
        self.param_loss_weighting = "sum"
        self.indexed = False
        self.zero_index_gradients = False

    @override(ParameterisedActionConfig)
    def training(
        self,
        *,
        variant=NotProvided,
        q_hiddens=NotProvided,
        param_hiddens=NotProvided,
        q_output_init_std=NotProvided,
        param_output_init_std=NotProvided,
        lr_q=NotProvided,
        lr_param=NotProvided,
        tau_q=NotProvided,
        tau_param=NotProvided,
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
            q_output_init_std: Std of the Q output layer's normal init; None = PyTorch default.
            param_output_init_std: Std of the parameter head's normal init (1e-4 Platform,
                1e-5 Goal); None = zeros.
            lr_q: Adam step size of the Q-network (1e-3 reference; 1e-4..1e-3).
            lr_param: Adam step size of the parameter network (1e-4 Platform, 1e-5 Goal).
            tau_q: Polyak rate of the Q target network per gradient step (0.1 reference).
            tau_param: Polyak rate of the parameter target network (0.001 reference).
            param_loss_weighting: How the K Q-values enter the parameter loss: "sum"
                (reference default), "weighted" (by batch action frequency), "average",
                "random_weighted".
            indexed: Use only Q(s, a_b) of the action taken in the parameter loss.
            zero_index_gradients: Zero dQ/dx for parameters of actions other than a_b.
            **kwargs: The shared settings of ``ParameterisedActionConfig.training`` (action
                layout, ``initial_params``, replay, ε schedule, parameter noise,
                ``action_gradient_strategy``, ``activation``) and ``AlgorithmConfig.training``
                arguments: ``gamma`` (0.9 Platform, 0.95 Goal), ``train_batch_size_per_learner``
                (128), ``grad_clip`` (norm clip per network: 10 Platform, 1 Goal).
        """
        super().training(**kwargs)
        self._store_arguments(locals())
        return self

    @property
    @override(ParameterisedActionConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            "variant": self.variant,
            "q_hiddens": list(self.q_hiddens),
            "param_hiddens": list(self.param_hiddens),
            "q_output_init_std": self.q_output_init_std,
            "param_output_init_std": self.param_output_init_std,
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

    @override(ParameterisedActionConfig)
    def validate(self) -> None:
        super().validate()
        self.check_choice("variant", VARIANTS)
        self.check_choice("param_loss_weighting", WEIGHTINGS)
        self.check_number("q_output_init_std", low=0, low_open=True, none_ok=True,
                          example=None)
        self.check_number("param_output_init_std", low=0, low_open=True, none_ok=True,
                          example=1e-4)
        self.check_bool("indexed")
        self.check_bool("zero_index_gradients")


class PDQN(ParameterisedActionAlgorithm):
    """The P-DQN family on the replay training step. Tune name: ``"PDQN"``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PDQNConfig:
        return PDQNConfig()
