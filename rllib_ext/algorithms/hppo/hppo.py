"""H-PPO (Fan et al. 2019): PPO for parameterised action spaces ``Tuple(Discrete(K), Box…)``,
on RLlib's PPO. The policy is a Categorical over the K actions times a Gaussian over the
parameters (:mod:`rllib_ext.core.parameterised.torch.hybrid_distribution`), trained with two
clipped surrogates, one per ratio, sharing one advantage (:mod:`.torch.hppo_torch_learner`).
The RL module is :class:`~rllib_ext.core.parameterised.torch.hybrid_ppo_rl_module.
HybridPPOTorchRLModule` (RLlib's PPO module with that distribution), so RLlib's own PPO can
train it too. Sampling, GAE, minibatching, epochs, the value loss, several env runners and
learners, checkpoints and Tune are RLlib's PPO unchanged.

Defaults are DI-engine's gym-hybrid H-PPO config as it was when its published curve was made
(benchmarks/RESULTS.md and ``docs/hppo.md`` list them and the deviations).
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_ext.core.action_bounds import lean_action_bounds
from rllib_ext.core.non_finite import NonFiniteGuardConfig
from rllib_ext.core.parameterised.hybrid_knobs import HybridPolicyKnobs
from rllib_ext.core.plain_config import PlainDictConfig
from rllib_ext.core.random_streams import SeparateEvaluationRandomness
from rllib_ext.core.rllib_compat import config_value_error
from rllib_ext.core.spaces import policy_spaces
from rllib_ext.core.threads import limit_torch_threads
from rllib_ext.core.validation import KnobChecks

#: ``surrogate`` values: two clipped ratios (H-PPO) or PPO's one joint ratio.
SURROGATES = ("separate", "joint")


class HPPOConfig(PlainDictConfig, KnobChecks, HybridPolicyKnobs, NonFiniteGuardConfig, PPOConfig):
    """Configuration of H-PPO: PPO's knobs plus the hybrid policy's.

    .. code-block:: python

        from rllib_ext import HPPOConfig

        config = (
            HPPOConfig()
            .environment("rllib_ext/Moving-v0")
            .training(param_layout=[1, 1, 0])   # brake owns no parameter
        )
        algo = config.build_algo()

    Defaults that differ from ``PPOConfig`` (DI-engine's gym-hybrid H-PPO): 8 envs per env
    runner, ``train_batch_size_per_learner=3200``, ``minibatch_size=320``, ``num_epochs=10``,
    ``lr=3e-4``, ``lambda_=0.95``, ``grad_clip=0.5`` (global norm), ``vf_loss_coeff=0.5``,
    ``use_kl_loss=False``, encoder ``fcnet_hiddens=[256, 128, 64, 64]`` shared with the value
    function (``vf_share_layers``), greedy evaluation.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or HPPO)
        self.evaluation_config = {"explore": False}
        self.num_envs_per_env_runner = 8
        self.train_batch_size_per_learner = 3200
        self.minibatch_size = 320
        self.num_epochs = 10
        self.lr = 3e-4
        self.gamma = 0.99
        self.lambda_ = 0.95
        self.clip_param = 0.2
        self.grad_clip = 0.5
        self.grad_clip_by = "global_norm"
        self.vf_loss_coeff = 0.5
        self.use_kl_loss = False
        self.entropy_coeff = 0.0  # replaced by the two coefficients below
        self._model_config = {"fcnet_hiddens": [256, 128, 64, 64], "vf_share_layers": True}
        # H-PPO knobs.
        self.surrogate = "separate"
        self.entropy_coeff_discrete = 0.03
        self.entropy_coeff_continuous = 0.03
        self.init_hybrid_knobs(sigma="fixed", initial_sigma=0.3)

    @override(PPOConfig)
    def training(self, *, surrogate=NotProvided, entropy_coeff_discrete=NotProvided,
                 entropy_coeff_continuous=NotProvided, logp_mode=NotProvided,
                 bound=NotProvided, sigma=NotProvided, initial_sigma=NotProvided,
                 param_layout=NotProvided, **kwargs) -> HPPOConfig:
        """Sets the training-related configuration.

        Args:
            surrogate: "separate" (default, Fan et al. and DI-engine): one clipped surrogate
                for the discrete ratio and one for the parameters' ratio, summed, both with the
                same advantage; a change of either part is clipped on its own. "joint": PPO's
                single ratio of the whole action (what RLlib's PPO does on this distribution).
            entropy_coeff_discrete: Weight of the discrete choice's entropy H(k) in the loss
                (0.03 default as DI-engine; 0..0.1). Replaces PPO's ``entropy_coeff``.
            entropy_coeff_continuous: Weight of the parameters' entropy E_k[H(x | k)] (0.03;
                with a fixed sigma it has no gradient, only a metric).
            logp_mode: Which parameters form the action's likelihood: "chosen" (default,
                Fan et al.: only the chosen action's parameters, the others never reach the
                env) or "all" (DI-engine's and RLlib's Tuple distribution).
            bound: How parameters stay in [-1, 1]: "tanh_mean" (default, DI-engine: a
                tanh-bounded mean, unbounded samples clipped on the way to the env) or
                "squashed" (tanh of a Gaussian sample, with its log-det term).
            sigma: The parameters' standard deviation: "fixed" (default, DI-engine),
                "state_independent" (learned, one per parameter) or "state_dependent" (a head
                output).
            initial_sigma: The fixed sigma, or the learned one's start (0.3 default; 0.1..1).
            param_layout: ``[P_1, ..., P_K]`` parameters per action, for a flat
                ``Tuple(Discrete(K), Box(P))`` action space (Moving/Sliding: ``[1, 1, 0]``);
                None for the tuple forms, which say it themselves.
            **kwargs: Any ``PPOConfig.training`` argument (``lr``, ``gamma``, ``lambda_``,
                ``clip_param``, ``vf_loss_coeff``, ``num_epochs``, ``minibatch_size``,
                ``train_batch_size_per_learner``, ``grad_clip``, ``use_kl_loss``...), except
                ``entropy_coeff`` (use the two coefficients above).

        Returns:
            This updated HPPOConfig.
        """
        super().training(**kwargs)
        self.set_hybrid_knobs(
            surrogate=surrogate, entropy_coeff_discrete=entropy_coeff_discrete,
            entropy_coeff_continuous=entropy_coeff_continuous, logp_mode=logp_mode,
            bound=bound, sigma=sigma, initial_sigma=initial_sigma, param_layout=param_layout)
        return self

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | self.hybrid_model_config()

    @override(PPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_ext.core.parameterised.torch.hybrid_ppo_rl_module import (
            HybridPPOTorchRLModule,
        )

        return RLModuleSpec(module_class=HybridPPOTorchRLModule)

    @override(PPOConfig)
    def get_default_learner_class(self):
        from rllib_ext.algorithms.hppo.torch.hppo_torch_learner import HPPOTorchLearner

        return HPPOTorchLearner

    @override(PPOConfig)
    def build_module_to_env_connector(self, env=None, spaces=None):
        """RLlib's pipeline with the action bounds applied once per batch:
        ``rllib_ext.core.action_bounds``."""
        return lean_action_bounds(self, super().build_module_to_env_connector(env, spaces))

    @override(PPOConfig)
    def validate(self) -> None:
        super().validate()
        self.check_choice("surrogate", SURROGATES)
        self.validate_hybrid_knobs()
        for name in ("entropy_coeff_discrete", "entropy_coeff_continuous"):
            self.check_number(name, low=0, example=0.03)
        if self.entropy_coeff != 0.0:
            config_value_error(self,
                f"entropy_coeff={self.entropy_coeff!r} is not used by H-PPO: set "
                "config.training(entropy_coeff=0.0, entropy_coeff_discrete=..., "
                "entropy_coeff_continuous=...) (0.03 each as DI-engine).")
        if self.env is not None:
            for _, action_space in policy_spaces(self).values():
                self.hybrid_layout(action_space, "H-PPO")


class HPPO(SeparateEvaluationRandomness, PPO):
    """H-PPO on RLlib's PPO (see the module docstring). Tune name: ``"HPPO"``."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> HPPOConfig:
        return HPPOConfig()

    @override(PPO)
    def setup(self, config) -> None:
        limit_torch_threads(config)
        super().setup(config)
