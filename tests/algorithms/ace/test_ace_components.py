"""ACE pieces without training: the weighted log-prob, causal weights on synthetic and
degenerate data, dormancy, soft resets, reset factors, the FIFO and config validation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

from rllib_ext import ACEConfig
from rllib_ext.algorithms.ace import causal
from rllib_ext.algorithms.ace.causal import (
    CausalWeightsWarning,
    TransitionFIFO,
    compute_causal_weights,
    fit_causal_weights,
    weights_from_effects,
)
from rllib_ext.algorithms.ace.dormancy import (
    causal_perturb_factor,
    gradient_dormancy,
    perturb_factor,
    soft_reset_,
)
from rllib_ext.algorithms.ace.torch.default_ace_torch_rl_module import (
    squashed_gaussian_sample_per_dim,
)

# -- weighted log-probability -------------------------------------------------------------------


def test_per_dimension_logp_matches_hand_computation_and_rllib():
    torch.manual_seed(0)
    mean = torch.tensor([[0.3, -0.2], [0.0, 0.0]])
    log_std = torch.tensor([[-0.5, 0.1], [0.0, 0.0]])
    action, logp = squashed_gaussian_sample_per_dim(torch.cat([mean, log_std], -1),
                                                    reparameterize=True)
    # Hand: x = atanh(a); log N(x; mu, sigma) - log(1 - tanh(x)^2), per dimension.
    x = torch.atanh(action.double())
    sigma = log_std.double().exp()
    hand = (-0.5 * ((x - mean) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
            - torch.log(1 - torch.tanh(x) ** 2))
    torch.testing.assert_close(logp.double(), hand, rtol=1e-4, atol=1e-4)
    # Summed over dimensions it is RLlib's squashed-Gaussian log-prob (SAC's).
    rllib = TorchSquashedGaussian.from_logits(torch.cat([mean, log_std], -1)).logp(action)
    torch.testing.assert_close(logp.sum(-1), rllib, rtol=1e-4, atol=1e-4)


def test_losses_use_the_causally_weighted_logp():
    """Critic target, policy loss and alpha loss with w = (1.5, 0.5), by hand."""
    from ray.rllib.algorithms.sac.sac_learner import QF_PREDS, QF_TWIN_PREDS
    from ray.rllib.core.columns import Columns

    from rllib_ext.algorithms.ace.ace_keys import (
        LOGP_NEXT_PER_DIM,
        LOGP_PER_DIM,
        Q_CURR,
        Q_TARGET_NEXT,
    )
    from rllib_ext.algorithms.ace.torch.ace_torch_learner import ace_losses

    batch = {Columns.REWARDS: torch.tensor([1.0]), Columns.TERMINATEDS: torch.tensor([False]),
             "weights": torch.tensor([1.0])}
    fwd_out = {
        LOGP_PER_DIM: torch.tensor([[-1.0, -2.0]]),       # log pi_c = -1.5 - 1.0 = -2.5
        LOGP_NEXT_PER_DIM: torch.tensor([[-1.0, -1.0]]),  # log pi_c(a'|s') = -2.0
        Q_TARGET_NEXT: torch.tensor([2.0]), Q_CURR: torch.tensor([0.5]),
        QF_PREDS: torch.tensor([3.2]), QF_TWIN_PREDS: torch.tensor([3.7]),
    }
    kwargs = dict(batch=batch, fwd_out=fwd_out, weights=torch.tensor([1.5, 0.5]),
                  log_alpha=torch.tensor([math.log(0.5)]), target_entropy=-2.0, gamma=0.9,
                  twin_q=True)
    losses, td, _ = ace_losses(**kwargs, policy_step=True)
    losses = {k: v.item() for k, v in losses.items()}
    # y = 1 + 0.9 * (2 - 0.5 * (-2.0)) = 3.7; MSE (the default, as the reference):
    # (3.2 - 3.7)^2 = 0.25.
    assert losses["qf"] == pytest.approx(0.25)
    assert losses["qf_twin"] == pytest.approx(0.0)
    # Huber (delta 1): 0.5 * 0.5^2 = 0.125 inside delta; |3.7 - 6.2| - 0.5 = 2.0 outside it.
    huber = ace_losses(**kwargs, policy_step=False, critic_loss="huber")[0]
    assert huber["qf"].item() == pytest.approx(0.125)
    far = dict(kwargs, fwd_out=dict(fwd_out, **{QF_PREDS: torch.tensor([6.2])}))
    assert ace_losses(**far, policy_step=False, critic_loss="huber")[0]["qf"].item() == \
        pytest.approx(2.0)
    assert ace_losses(**far, policy_step=False)[0]["qf"].item() == pytest.approx(6.25)
    # TD error for priorities: mean of both critics' |Q - y| = (0.5 + 0) / 2.
    assert td.tolist() == pytest.approx([0.25])
    # Policy: 0.5 * (-2.5) - 0.5 = -1.75.
    assert losses["policy"] == pytest.approx(-1.75)
    # Alpha: -log(0.5) * (-2.5 + H_target), H_target = -A = -2 -> -(-0.6931 * -4.5).
    assert losses["alpha"] == pytest.approx(-math.log(2) * 4.5, rel=1e-5)
    # A critic-only step has the critic losses only (the policy pass did not run).
    critic_only = dict(kwargs, fwd_out={k: v for k, v in fwd_out.items()
                                        if k not in (LOGP_PER_DIM, Q_CURR)})
    assert set(ace_losses(**critic_only, policy_step=False)[0]) == {"qf", "qf_twin"}


# -- causal weights ------------------------------------------------------------------------------


def _linear_data(n=2000, seed=0):
    """s (3) and a (3) uniform; r = 2 a_0 + 0 a_1 + 0.5 a_2 + 0.5 s_0 + uniform noise."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, (n, 3))
    a = rng.uniform(-1, 1, (n, 3))
    r = 2.0 * a[:, 0] + 0.5 * a[:, 2] + 0.5 * s[:, 0] + rng.uniform(-0.2, 0.2, n)
    return s, a, r


def test_known_structure_ranks_actions_by_effect():
    s, a, r = _linear_data()
    fit = fit_causal_weights(s, a, r, random_state=0)
    assert fit.fallback is None
    np.testing.assert_allclose(fit.effects, [2.0, 0.0, 0.5], atol=0.05)
    assert fit.weights.sum() == pytest.approx(3.0)
    assert np.argmax(fit.weights) == 0
    assert fit.weights[1] < fit.weights[2] < fit.weights[0]
    # The reference transform: 3 * softmax(effects).
    np.testing.assert_allclose(fit.weights, weights_from_effects(fit.effects), rtol=1e-12)


def test_softmax_hand_values_and_abs_transform():
    np.testing.assert_allclose(weights_from_effects(np.array([0.0, 0.0])), [1.0, 1.0])
    e = np.exp(1.0)
    np.testing.assert_allclose(weights_from_effects(np.array([1.0, 0.0])),
                               [2 * e / (e + 1), 2 / (e + 1)])
    np.testing.assert_allclose(weights_from_effects(np.array([-1.0, 0.0]), "softmax_abs"),
                               [2 * e / (e + 1), 2 / (e + 1)])
    # Large coefficients do not overflow.
    assert np.isfinite(weights_from_effects(np.array([1e4, 0.0]))).all()


def test_constant_columns_are_dropped_not_poisoning_the_fit():
    s, a, r = _linear_data()
    s[:, 1] = 3.0  # constant state column
    a[:, 1] = 0.25  # constant action column: its effect is 0 by construction
    fit = fit_causal_weights(s, a, r, random_state=0)
    assert fit.fallback is None
    assert fit.dropped_columns == [1, 4]
    assert fit.effects[1] == 0.0
    assert np.argmax(fit.weights) == 0 and fit.effects[0] == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("case, reason", [
    ("constant_reward", causal.CONSTANT_REWARD),
    ("nan", causal.NON_FINITE),
    ("inf", causal.NON_FINITE),
    ("too_few", causal.TOO_FEW_SAMPLES),
    ("fit_raises", causal.FIT_FAILED),
])
def test_degenerate_inputs_give_uniform_weights_and_a_warning(case, reason, monkeypatch):
    s, a, r = _linear_data(n=500)
    if case == "constant_reward":
        r[:] = 1.0
    elif case == "nan":
        s[3, 0] = np.nan
    elif case == "inf":
        r[7] = np.inf
    elif case == "too_few":
        s, a, r = s[:7], a[:7], r[:7]  # 7 rows, 7 variables
    else:
        from rllib_ext.algorithms.ace import direct_lingam

        def boom(X, rows=None, **kwargs):
            raise np.linalg.LinAlgError("singular")

        monkeypatch.setattr(direct_lingam, "fit", boom)
    assert fit_causal_weights(s, a, r).fallback == reason
    with pytest.warns(CausalWeightsWarning, match=reason):
        weights = compute_causal_weights(s, a, r)
    np.testing.assert_array_equal(weights, np.ones(3))


def test_no_warning_on_good_data_and_caller_errors_raise():
    s, a, r = _linear_data(n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CausalWeightsWarning)
        compute_causal_weights(s, a, r, random_state=0)
    with pytest.raises(ValueError, match="same number of rows"):
        compute_causal_weights(s, a[:10], r)
    with pytest.raises(ValueError, match="transform"):
        compute_causal_weights(s, a, r, transform="abs")


# -- FIFO ---------------------------------------------------------------------------------------


def test_fifo_keeps_the_most_recent_transitions_in_order():
    fifo = TransitionFIFO(4, obs_dim=1, action_dim=1)
    fifo.add(np.arange(3)[:, None], np.arange(3)[:, None], np.arange(3))
    assert not fifo.full and fifo.size == 3
    fifo.add(np.arange(3, 6)[:, None], np.arange(3, 6)[:, None], np.arange(3, 6))
    obs, actions, rewards = fifo.arrays()
    np.testing.assert_array_equal(rewards, [2, 3, 4, 5])
    np.testing.assert_array_equal(obs[:, 0], [2, 3, 4, 5])
    assert fifo.full and fifo.num_added == 6
    copy = TransitionFIFO(4, 1, 1)
    copy.set_state(fifo.get_state())
    for x, y in zip(copy.arrays(), fifo.arrays(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert copy.num_added == 6


# -- dormancy and resets ------------------------------------------------------------------------


def test_gradient_dormancy_by_hand():
    layer = torch.nn.Linear(2, 4)
    # Row gradient norms 1, 1, 0.01, 1 -> mean 0.7525; 5% of it = 0.0376 -> row 2 is dormant.
    layer.weight.grad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.01, 0.0], [0.6, 0.8]])
    other = torch.nn.Linear(4, 2)
    other.weight.grad = torch.ones(2, 4)
    ratio, masks = gradient_dormancy([layer, other], threshold=0.05)
    assert ratio == pytest.approx(1 / 6)
    assert masks[0].tolist() == [False, False, True, False] and not masks[1].any()


def test_soft_reset_mixes_all_or_only_masked_rows():
    net, fresh = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    with torch.no_grad():
        net.weight.fill_(1.0), net.bias.fill_(1.0), fresh.weight.fill_(0.0), fresh.bias.fill_(-1.0)
    soft_reset_(net, fresh, 0.9, masks=[torch.tensor([False, True, False])])
    assert net.weight[:, 0].tolist() == pytest.approx([1.0, 0.9, 1.0])
    assert net.bias.tolist() == pytest.approx([1.0, 0.8, 1.0])  # 0.9 * 1 + 0.1 * -1
    soft_reset_(net, fresh, 0.5)
    assert net.weight[:, 0].tolist() == pytest.approx([0.5, 0.45, 0.5])


def test_reset_factors_as_the_reference():
    assert perturb_factor(0.0) == 0.9  # capped: a reset always mixes in 10 %
    assert perturb_factor(0.3) == pytest.approx(0.7)
    assert perturb_factor(0.95) == 0.2
    assert causal_perturb_factor([1.0, 1.0]) == pytest.approx(0.5)  # 1 - (e^0 - 0.5)
    assert causal_perturb_factor([1.01, 0.99]) == pytest.approx(1.5 - math.exp(-0.16))
    assert causal_perturb_factor([1.9, 0.1]) == 0.9


# -- config validation --------------------------------------------------------------------------


def _config(env="Pendulum-v1", **training):
    return ACEConfig().environment(env).env_runners(num_env_runners=0).training(**training)


@pytest.mark.parametrize("env, training, match", [
    ("CartPole-v1", {}, "1-D Box action space.*use SAC"),
    ("Pendulum-v1", {"causal_sample_size": 4}, r"causal_sample_size=4 .*causal_sample_size="),
    ("Pendulum-v1", {"causal_update_interval": -1}, r"training\(causal_update_interval="),
    ("Pendulum-v1", {"reset_interval": -1}, r"training\(reset_interval="),
    ("Pendulum-v1", {"policy_update_freq": 0}, r"training\(policy_update_freq="),
    ("Pendulum-v1", {"reset_strength": "hard"}, r"training\(reset_strength="),
    ("Pendulum-v1", {"reset_scope": "some"}, r"training\(reset_scope="),
    ("Pendulum-v1", {"q_network": "wide"}, r"training\(q_network="),
    ("Pendulum-v1", {"causal_backend": "sklearn"}, r"training\(causal_backend="),
    ("Pendulum-v1", {"updates_per_env_step": 0}, r"training\(updates_per_env_step="),
    ("Pendulum-v1", {"training_intensity": 256}, r"updates_per_env_step=.*training_intensity"),
    ("Pendulum-v1", {"n_step": 3}, r"training\(n_step=1\)"),
    ("Pendulum-v1", {"replay_buffer_config": {"type": "MultiAgentEpisodeReplayBuffer",
                                                "capacity": 1000}},
     "PrioritizedEpisodeReplayBuffer"),
    ("Pendulum-v1", {"replay_buffer_config": {"capacity": 100}}, r"capacity=100 .*>= the train"),
    ("Pendulum-v1", {"causal_num_threads": 4}, "raise causal_worker_num_cpus"),
    ("Pendulum-v1", {"causal_worker_num_cpus": -1}, r"training\(causal_worker_num_cpus="),
    ("Pendulum-v1", {"causal_weight_transform": "abs"}, "causal_weight_transform="),
    ("Pendulum-v1", {"dormancy_threshold": 0.0}, "dormancy_threshold=0.05"),
    ("Pendulum-v1", {"perturb_factor_min": 0.95}, "perturb_factor_min=0.2"),
    ("Pendulum-v1", {"target_network_update_freq": 10}, "target_network_update_freq=0"),
    ("Pendulum-v1", {"critic_loss": "l1"}, r"training\(critic_loss="),
    ("Pendulum-v1", {"causal_coefficients": "ridge"}, r"training\(causal_coefficients="),
    ("Pendulum-v1", {"sequential_actor_update": "yes"}, "sequential_actor_update"),
    ("Pendulum-v1", {"random_warmup_steps": -5}, r"training\(random_warmup_steps="),
    ("Pendulum-v1", {"random_warmup_steps": 2.5}, r"training\(random_warmup_steps="),
    ("Pendulum-v1", {"log_std_bounds": (2, -20)}, r"log_std_bounds=\(2, -20\).*\(-20, 2\)"),
    ("Pendulum-v1", {"log_std_bounds": -20}, r"log_std_bounds=-20 .*pair"),
])
def test_config_validation_names_the_fix(env, training, match):
    with pytest.raises(ValueError, match=match):
        _config(env, **training).validate()


def test_config_requires_the_ace_callback():
    from ray.rllib.callbacks.callbacks import RLlibCallback

    from rllib_ext.algorithms.ace import ACECallback

    with pytest.raises(ValueError, match=r"config.callbacks\(\[ACECallback"):
        _config().callbacks(RLlibCallback).validate()
    _config().callbacks([ACECallback, RLlibCallback]).validate()


def test_diagnostics_see_a_dead_action_stream():
    """A fresh critic depends on the action; with every unit of both action streams' last layer
    pushed below zero (what training did to Pendulum seed 2), Q ignores a: dQ/da = 0."""
    import gymnasium as gym

    from rllib_ext.algorithms.ace.diagnostics import live_action_units, mean_abs_dq_da

    env = gym.make("Pendulum-v1")
    module = _config(q_network="multi_stream").rl_module(
        model_config={"fcnet_hiddens": [8, 8]}).get_rl_module_spec(env=env).build()
    obs = torch.tensor(np.stack([env.observation_space.sample() for _ in range(32)]))
    live = live_action_units(module)
    assert set(live) == {"qf_encoder", "qf_twin_encoder"}
    assert all(0 < n <= total == 8 for n, total in live.values())
    assert mean_abs_dq_da(module, obs) > 0
    with torch.no_grad():
        for name in live:
            last = [m for m in getattr(module, name).base_encoders["actions"].modules()
                    if isinstance(m, torch.nn.Linear)][-1]
            last.bias.fill_(-1e3)
    assert live_action_units(module) == {"qf_encoder": (0, 8), "qf_twin_encoder": (0, 8)}
    assert mean_abs_dq_da(module, obs) == 0.0
    # The default "concat" critics have no action stream to die: (s, a) share the first layer.
    concat = _config().rl_module(model_config={"fcnet_hiddens": [8, 8]}).get_rl_module_spec(
        env=env).build()
    assert live_action_units(concat) == {} and mean_abs_dq_da(concat, obs) > 0


# -- exploration: random warm-up and the log-std clamp ------------------------------------------


def _module(**training):
    import gymnasium as gym

    return _config(**training).rl_module(model_config={"fcnet_hiddens": [8]}).get_rl_module_spec(
        env=gym.make("Pendulum-v1")).build()


def test_random_warmup_acts_uniformly_then_the_policy_acts():
    """Below ``random_warmup_steps`` (the env runner's global step count ``t``) the module
    hands out uniform actions on [-1, 1] with their log-density -A log 2 (RLlib's GetActions
    then keeps them); from ``t = random_warmup_steps`` on it returns only the policy's
    distribution inputs."""
    from ray.rllib.core.columns import Columns

    module = _module(random_warmup_steps=100)
    obs = {Columns.OBS: torch.zeros(4000, 3)}
    torch.manual_seed(0)
    out = module.forward_exploration(obs, t=99)
    actions = out[Columns.ACTIONS]
    assert actions.shape == (4000, 1) and actions.min() >= -1 and actions.max() <= 1
    # Uniform on [-1, 1]: mean 0, variance 1/3 (the policy's tanh-Gaussian at a zero input is
    # one value spread by its noise, not this); all draws differ.
    assert abs(actions.mean().item()) < 0.05 and actions.var().item() == pytest.approx(1 / 3,
                                                                                     abs=0.02)
    assert out[Columns.ACTION_LOGP].tolist() == pytest.approx([-math.log(2.0)] * 4000)
    assert Columns.ACTION_DIST_INPUTS in out
    after = module.forward_exploration(obs, t=100)
    assert Columns.ACTIONS not in after and Columns.ACTION_DIST_INPUTS in after
    assert Columns.ACTIONS not in _module(random_warmup_steps=0).forward_exploration(obs, t=0)


@pytest.mark.parametrize("bounds, expected_std", [((-20.0, 2.0), math.exp(-10.0)),
                                                  ((-5.0, 2.0), math.exp(-5.0))])
def test_exploration_clamps_log_std_to_the_configured_bounds(bounds, expected_std):
    module = _module(log_std_bounds=bounds)
    logits = torch.tensor([[0.3, -10.0]])  # mean 0.3, log-std -10
    dist = module.get_exploration_action_dist_cls().from_logits(logits)
    # At the mean action tanh(0.3): log p = -log(std) - log(2 pi) / 2 - log(1 - tanh(0.3)^2).
    at_mean = torch.tanh(torch.tensor([[0.3]]))
    expected_logp = (-math.log(expected_std) - 0.5 * math.log(2 * math.pi)
                     - math.log(1 - math.tanh(0.3) ** 2))
    assert dist.logp(at_mean).item() == pytest.approx(expected_logp, rel=1e-4)
    # Training passes clamp the same way: a per-dimension log-prob at the mean is
    # log N(0; 0, std) - log(1 - tanh(0.3)^2).
    from rllib_ext.algorithms.ace.torch.default_ace_torch_rl_module import (
        squashed_gaussian_sample_per_dim,
    )

    torch.manual_seed(0)
    a, logp = squashed_gaussian_sample_per_dim(logits, reparameterize=False,
                                               log_std_bounds=module.log_std_bounds)
    x = torch.atanh(a)
    expected = torch.distributions.Normal(0.3, expected_std).log_prob(x) - torch.log(
        1 - a ** 2)
    assert logp.item() == pytest.approx(expected.item(), rel=1e-3)
