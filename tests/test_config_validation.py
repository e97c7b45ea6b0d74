"""The bad-input matrix: every knob of every config with at least one bad value is rejected by
``validate()`` with a ``ValueError`` naming the knob, and a fix (``config.<section>(...)``).

Bad values include the cases found trained on garbage or crashing late before the shared
checks (``rllib_ext.core.validation``): NaN/inf/negative rates, ``grad_clip=-1``, a rising
ε schedule, ``initial_params`` outside [-1, 1], ``tau=5``, ``initial_alpha=-1``, an int
``fcnet_hiddens``, ``num_env_runners=-3``, a numeric string for ``lr``.
"""

from __future__ import annotations

import math

import pytest

from rllib_ext import ACEConfig, PADDPGConfig, PDQNConfig, PGConfig
from rllib_ext.core.validation import KnobChecks

NAN, INF = math.nan, math.inf

#: Bad values of the AlgorithmConfig knobs every algorithm relies on: (section, knob, value).
COMMON = [
    ("training", "gamma", 1.5), ("training", "gamma", NAN), ("training", "gamma", "0.9"),
    ("training", "grad_clip", -1), ("training", "grad_clip", INF),
    ("training", "train_batch_size_per_learner", 0),
    ("training", "train_batch_size_per_learner", 2.5),
    ("env_runners", "num_env_runners", -3), ("env_runners", "num_env_runners", 1.5),
    ("env_runners", "num_envs_per_env_runner", 1.5),
    ("env_runners", "sample_timeout_s", -1.0),
    ("learners", "num_learners", -1),
    ("debugging", "seed", "abc"),
]
MODEL = [({"fcnet_hiddens": 8}, "fcnet_hiddens"), ({"fcnet_hiddens": [64, 0]}, "fcnet_hiddens"),
         ({"head_fcnet_hiddens": [-4]}, "head_fcnet_hiddens")]

PG_KNOBS = [
    ("lr", NAN), ("lr", "0.01"), ("lr", 0.0), ("lr", -1.0), ("lr", INF), ("lr", [[5, 1e-3]]),
    ("reward_to_go", "yes"), ("baseline", "median"), ("normalize_advantages", 1),
    ("off_policy_reuse", -1), ("off_policy_reuse", 1.5), ("importance_sampling", "weighted"),
    ("is_clip", 0.0), ("is_self_normalize", "no"),
]
PARAMETERISED_KNOBS = [
    ("activation", "gelu"), ("initial_params", [2.0, 0.0, 0.0]),
    ("initial_params", [NAN, 0.0, 0.0]), ("initial_param_weights", [[INF]]),
    ("param_layout", [-1, 1]), ("replay_capacity", 0), ("replay_capacity", 1.5),
    ("reward_scale", 0), ("reward_scale", NAN), ("adam_betas", (1.0, 0.9)),
    ("adam_betas", (0.9,)), ("updates_per_env_step", 0), ("updates_per_env_step", INF),
    ("num_steps_sampled_before_learning_starts", -1), ("epsilon_initial", 1.5),
    ("epsilon_final", -0.1), ("epsilon_decay_duration", -5), ("epsilon_decay_duration", 2.5),
    ("epsilon_decay_unit", "hour"), ("epsilon_schedule", "cosine"), ("exploration_noise", "pink"),
    ("ou_theta", 0),
    ("ou_sigma", -1.0), ("gaussian_sigma", 0.0), ("action_gradient_strategy", "clip"),
]
PDQN_KNOBS = [
    ("lr_q", INF), ("lr_q", 0.0), ("lr_param", NAN), ("lr_param", -1e-4), ("variant", "dqn"),
    ("q_hiddens", 8), ("q_hiddens", [0]), ("param_hiddens", [-1]), ("q_output_init_std", -1.0),
    ("param_output_init_std", 0.0), ("tau_q", 0.0), ("tau_q", 1.5), ("tau_param", NAN),
    ("param_loss_weighting", "max"), ("indexed", "yes"), ("zero_index_gradients", 2),
]
PADDPG_KNOBS = [
    ("lr_actor", -1.0), ("lr_critic", NAN), ("actor_hiddens", [0]), ("critic_hiddens", "64"),
    ("actor_output_init_std", -1.0), ("critic_output_init_std", 0.0), ("tau_actor", 0.0),
    ("tau_critic", 2.0),
]
ACE_KNOBS = [
    ("actor_lr", 0.0), ("critic_lr", -1e-3), ("alpha_lr", INF), ("tau", 5.0), ("tau", 0.0),
    ("initial_alpha", -1.0), ("initial_alpha", 0.0), ("target_entropy", "high"),
    ("twin_q", "yes"), ("causal_async", 1), ("causal_sample_size", 1),
    ("causal_update_interval", -1), ("causal_update_interval", 2.5),
    ("causal_weight_transform", "abs"), ("causal_backend", "sklearn"),
    ("causal_worker_num_cpus", -1), ("causal_num_threads", 0), ("reset_interval", -1),
    ("reset_strength", "hard"), ("reset_scope", "some"), ("dormancy_threshold", 0.0),
    ("perturb_factor_min", -0.1), ("perturb_factor_max", 1.5), ("policy_update_freq", 0),
    ("updates_per_env_step", NAN), ("q_network", "wide"),
    ("num_steps_sampled_before_learning_starts", -5), ("critic_loss", "l1"),
    ("sequential_actor_update", 1), ("log_std_bounds", (2, -20)), ("random_warmup_steps", -1),
    ("causal_coefficients", "ridge"),
]

CONFIGS = {"PG": PGConfig, "PDQN": PDQNConfig, "PADDPG": PADDPGConfig, "ACE": ACEConfig}
OWN = {"PG": PG_KNOBS, "PDQN": PARAMETERISED_KNOBS + PDQN_KNOBS,
       "PADDPG": PARAMETERISED_KNOBS + PADDPG_KNOBS, "ACE": ACE_KNOBS}
MATRIX = (
    [(algo, section, knob, value) for algo in CONFIGS for section, knob, value in COMMON]
    + [(algo, "rl_module", key, {"model_config": model}) for algo in CONFIGS
       for model, key in MODEL]
    + [(algo, "training", knob, value) for algo, rows in OWN.items() for knob, value in rows]
)


def _apply(config, section: str, knob: str, value):
    if section == "rl_module":
        return config.rl_module(**value)
    return getattr(config, section)(**{knob: value})


@pytest.mark.parametrize("algo, section, knob, value", MATRIX,
                         ids=[f"{a}-{k}={v!r}" for a, _, k, v in MATRIX])
def test_bad_knob_is_rejected_naming_it_and_the_fix(algo, section, knob, value):
    config = _apply(CONFIGS[algo](), section, knob, value)
    with pytest.raises(ValueError) as info:
        config.validate()
    message = str(info.value)
    assert f"{knob}" in message and "config." in message, message
    if section != "rl_module":
        assert f"{knob}={value!r}" in message, message


@pytest.mark.parametrize("algo, training, match", [
    ("PDQN", {"epsilon_initial": 0.0, "epsilon_final": 0.9},
     r"epsilon_final=0.9 exceeds epsilon_initial=0.0.*epsilon_initial=1.0"),
    ("PADDPG", {"replay_capacity": 16}, "replay_capacity=16 is smaller than one batch"),
    ("ACE", {"train_batch_size_per_learner": 256, "replay_buffer_config": {"capacity": 100}},
     r"capacity=100 must be an integer >= the train batch \(256\)"),
    ("ACE", {"num_steps_sampled_before_learning_starts": 5000,
             "replay_buffer_config": {"capacity": 1000}}, "learning would never start"),
    ("ACE", {"perturb_factor_min": 0.8, "perturb_factor_max": 0.5},
     "perturb_factor_min <= perturb_factor_max"),
])
def test_inconsistent_knobs_are_rejected(algo, training, match):
    with pytest.raises(ValueError, match=match):
        CONFIGS[algo]().training(**training).validate()


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_defaults_and_schedules_validate(algo):
    config = CONFIGS[algo]()
    config.validate()
    if algo == "PG":  # an RLlib learning-rate schedule is a valid lr
        PGConfig().training(lr=[[0, 1e-3], [10_000, 1e-4]]).validate()


def test_every_message_names_value_and_fix():
    """The shared helper's message format, on a bare config."""
    config = PGConfig().training(gamma=-0.5)
    with pytest.raises(ValueError, match=r"gamma=-0.5 must be a finite number in \[0, 1\]; "
                                         r"fix it with config.training\(gamma=0.99\)"):
        config.validate()
    assert issubclass(PGConfig, KnobChecks)
