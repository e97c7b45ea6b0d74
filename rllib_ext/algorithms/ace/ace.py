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

The training loop, replay buffer and networks are RLlib's SAC (``DQN`` training step).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac.sac import SAC, SACConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.ace.callbacks import ACECallback
from rllib_ext.algorithms.ace.causal import TRANSFORMS, TransitionFIFO
from rllib_ext.algorithms.spaces import probe_env_spaces
from rllib_ext.algorithms.threads import limit_torch_threads

RESET_VARIANTS = ("none", "reset", "causal_reset", "dormant_reset", "causal_dormant_reset")
#: Algorithm-state key of ACE's causal bookkeeping (FIFO, fit counters, current weights).
ACE_ALGORITHM_STATE = "ace"


class ACEConfig(SACConfig):
    """Configuration of ACE (SAC's settings plus the causal and reset knobs).

    .. code-block:: python

        from rllib_ext import ACEConfig

        config = (
            ACEConfig()
            .environment("rllib_ext/CausalReach-v0")
            .training(causal_sample_size=5000, causal_update_interval=5000)
        )
        algo = config.build_algo()

    The ACE knobs default to the reference's values (``main_causal.py``); SAC's knobs keep
    RLlib's SAC defaults. ACE's machinery runs from :class:`~.callbacks.ACECallback`, installed
    here; to add your own callbacks pass a list: ``config.callbacks([ACECallback, Mine])``.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ACE)
        self.callbacks_class = ACECallback
        self.causal_sample_size = 10_000
        self.causal_update_interval = 10_000
        self.causal_weight_transform = "softmax"
        self.causal_async = True
        self.reset_variant = "reset"
        self.reset_interval = 100_000
        self.dormancy_threshold = 0.05
        self.perturb_factor_min = 0.2
        self.perturb_factor_max = 0.9
        self.policy_update_freq = 2
        self._causal_fit_delay_s = 0.0

    @override(SACConfig)
    def training(
        self,
        *,
        causal_sample_size=NotProvided,
        causal_update_interval=NotProvided,
        causal_weight_transform=NotProvided,
        causal_async=NotProvided,
        reset_variant=NotProvided,
        reset_interval=NotProvided,
        dormancy_threshold=NotProvided,
        perturb_factor_min=NotProvided,
        perturb_factor_max=NotProvided,
        policy_update_freq=NotProvided,
        _causal_fit_delay_s=NotProvided,
        **kwargs,
    ) -> ACEConfig:
        """Sets the training configuration.

        Args:
            causal_sample_size: The most recent transitions (a FIFO) each causal fit uses, and
                the number needed before the first fit (10 000 reference; 2 000..20 000 - the
                fit time grows ~(S + A + 1)^3, only mildly with this).
            causal_update_interval: Env steps between causal fits (10 000 reference; smaller
                tracks the changing policy more closely at more CPU cost).
            causal_weight_transform: Effects -> weights: "softmax" (reference:
                A * softmax of the signed a_i -> r coefficients; negative effects get small
                weights) or "softmax_abs" (A * softmax of their magnitudes).
            causal_async: True (default): fit in a Ray actor, never blocking an iteration.
                False: fit synchronously in the training process (reproducible; blocks).
            reset_variant: "reset" (reference default: soft-reset policy, critics and target
                critics, strength from the policy's gradient dormancy), "causal_reset"
                (strength from the spread of the causal weights), "dormant_reset" /
                "causal_dormant_reset" (same strengths, only gradient-dormant neurons), or
                "none" (no resets).
            reset_interval: Gradient updates between resets (100 000 reference; each reset
                costs some return for a while, so keep it >= ~10 000 for real runs).
            dormancy_threshold: A neuron is gradient-dormant when its weight-gradient row norm
                is below this fraction of its layer's mean (0.05 reference; 0.01..0.1).
            perturb_factor_min: Lower clip of the kept fraction theta (0.2 reference).
            perturb_factor_max: Upper clip of the kept fraction (0.9 reference; 1.0 would make
                a reset with no dormancy a no-op).
            policy_update_freq: Policy, alpha and target critics are updated every this many
                critic updates (2 reference; 1 = SAC's schedule).
            _causal_fit_delay_s: Test option: seconds each causal fit sleeps first (emulates
                a slow fit). 0 in real runs.
            **kwargs: ``SACConfig.training`` arguments (``actor_lr``, ``critic_lr``,
                ``alpha_lr``, ``tau``, ``initial_alpha``, ``twin_q``,
                ``replay_buffer_config``, ...).
        """
        super().training(**kwargs)
        for name, value in locals().items():
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)
        return self

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
        super().validate()

        def integer(name, minimum):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < minimum:
                self._value_error(f"{name}={value!r} must be an integer >= {minimum}; fix it "
                                  f"with config.training({name}=...).")

        if self.framework_str != "torch":
            self._value_error(
                "ACE supports framework='torch' only; call config.framework('torch')."
            )
        if self.is_multi_agent:
            self._value_error("ACE supports single-agent envs only; remove config.multi_agent().")
        if self.reset_variant not in RESET_VARIANTS:
            self._value_error(f"reset_variant={self.reset_variant!r} is not one of "
                              f"{list(RESET_VARIANTS)}; set config.training(reset_variant=...).")
        if self.causal_weight_transform not in TRANSFORMS:
            self._value_error(f"causal_weight_transform={self.causal_weight_transform!r} is not "
                              f"one of {list(TRANSFORMS)}; set "
                              "config.training(causal_weight_transform=...).")
        integer("causal_sample_size", 2)
        integer("causal_update_interval", 1)
        integer("reset_interval", 1)
        integer("policy_update_freq", 1)
        if not 0 < self.dormancy_threshold <= 1:
            self._value_error(f"dormancy_threshold={self.dormancy_threshold} must be in (0, 1], "
                              "e.g. config.training(dormancy_threshold=0.05).")
        if not 0 <= self.perturb_factor_min <= self.perturb_factor_max <= 1:
            self._value_error(
                f"Need 0 <= perturb_factor_min <= perturb_factor_max <= 1, got "
                f"{self.perturb_factor_min}, {self.perturb_factor_max}; e.g. "
                "config.training(perturb_factor_min=0.2, perturb_factor_max=0.9)."
            )
        if self._causal_fit_delay_s < 0:
            self._value_error(f"_causal_fit_delay_s={self._causal_fit_delay_s} must be >= 0.")
        if self.target_network_update_freq != 0:
            self._value_error(
                f"target_network_update_freq={self.target_network_update_freq} is not used: ACE "
                "updates the target critics every policy_update_freq gradient steps; set "
                "config.training(target_network_update_freq=0, policy_update_freq=...)."
            )
        callbacks = self.callbacks_class if isinstance(self.callbacks_class, (list, tuple)) \
            else [self.callbacks_class]
        if not any(isinstance(c, type) and issubclass(c, ACECallback) for c in callbacks):
            self._value_error(
                f"callbacks_class={self.callbacks_class!r} does not include ACECallback, which "
                "runs ACE's causal fits and resets; use config.callbacks([ACECallback, "
                "YourCallback]) (ACECallback from rllib_ext.algorithms.ace)."
            )
        if self.env is not None:
            self.validate_spaces(*probe_env_spaces(self))

    def validate_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Rejects spaces ACE cannot handle, with the fix."""
        if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1):
            self._value_error(
                f"ACE needs a 1-D Box action space (causal weights are per continuous "
                f"dimension), got {action_space}. For Discrete actions use SAC; flatten other "
                "Box shapes with a gymnasium action wrapper."
            )
        if not (isinstance(observation_space, gym.spaces.Box)
                and len(observation_space.shape) == 1):
            self._value_error(
                f"ACE needs a 1-D Box observation space, got {observation_space}; flatten it, "
                "e.g. with gymnasium.wrappers.FlattenObservation."
            )
        num_vars = observation_space.shape[0] + action_space.shape[0] + 1
        if self.causal_sample_size <= num_vars:
            self._value_error(
                f"causal_sample_size={self.causal_sample_size} must exceed the number of "
                f"variables of the causal fit ({num_vars} = obs + actions + reward); use "
                "config.training(causal_sample_size=10000) (the reference) or at least "
                f"{20 * num_vars}."
            )


class ACE(SAC):
    """ACE on SAC's training loop. Tune name: ``"ACE"``.

    Attributes:
        causal_fifo: The last ``causal_sample_size`` transitions (s, a, r) seen by the replay.
        causal_status: Causal bookkeeping: current weights, fit counters, the env step of the
            data behind the weights (checkpointed with the FIFO).
    """

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> ACEConfig:
        return ACEConfig()

    @override(SAC)
    def setup(self, config: ACEConfig) -> None:
        limit_torch_threads(config)
        obs_space, action_space = probe_env_spaces(config)
        self.causal_fifo = TransitionFIFO(config.causal_sample_size, obs_space.shape[0],
                                          action_space.shape[0])
        self.causal_status = {
            "weights": np.ones(action_space.shape[0]),
            "num_fits": 0,
            "num_fallbacks": 0,
            "last_fallback": None,
            "last_fit_s": float("nan"),
            "weights_data_step": None,  # FIFO step count of the data behind the weights
            "last_submitted_step": None,
            "num_worker_restarts": 0,
        }
        # ``on_algorithm_init`` runs inside super().setup(), so the FIFO must exist first.
        super().setup(config)
        # SAC's training step (DQN's) hands the sampled episodes only to the replay buffer;
        # its ``add`` is where ACE sees every new transition, so it copies them into the FIFO.
        buffer_add = self.local_replay_buffer.add

        def add(episodes, *args, **kwargs):
            self.causal_fifo.add_episodes(episodes)
            return buffer_add(episodes, *args, **kwargs)

        self.local_replay_buffer.add = add

    def causal_fit_due(self) -> bool:
        """A full FIFO and ``causal_update_interval`` new steps since the last submitted fit."""
        last = self.causal_status["last_submitted_step"]
        return self.causal_fifo.full and (
            last is None or self.causal_fifo.num_added - last >= self.config.causal_update_interval
        )

    @override(SAC)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[ACE_ALGORITHM_STATE] = {"fifo": self.causal_fifo.get_state(),
                                      "status": dict(self.causal_status)}
        return state

    @override(SAC)
    def set_state(self, state) -> None:
        super().set_state(state)
        if ACE_ALGORITHM_STATE in state:
            self.causal_fifo.set_state(state[ACE_ALGORITHM_STATE]["fifo"])
            self.causal_status.update(state[ACE_ALGORITHM_STATE]["status"])
