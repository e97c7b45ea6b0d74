"""The hybrid action distribution: hand-computed log-likelihoods, entropies and KLs for both
log-prob modes and both bounds, Monte-Carlo checks that they agree with sampling, and the three
action layouts."""

from __future__ import annotations

import math

import pytest
import torch
from gymnasium import spaces

from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.torch.hybrid_distribution import (
    TorchHybridDeterministic,
    TorchHybridDistribution,
)

BOX = spaces.Box(-1, 1, (1,))
# K = 3 actions owning 1, 0 and 2 parameters: slots [a0 | - | a2, a2].
FLAT = layout_from_space(spaces.Tuple((spaces.Discrete(3), BOX, spaces.Box(-1, 1, (0,)),
                                       spaces.Box(-1, 1, (2,)))))
LOGITS = [0.0, math.log(2.0), 0.0]            # p = (1/4, 1/2, 1/4)
MEAN = [0.5, 0.0, -1.0]                       # pre-tanh
LOG_STD = [0.0, math.log(2.0), math.log(0.5)]  # sigma = (1, 2, 1/2)
ACTION_K, ACTION_X = 2, [0.3, 1.0, -0.5]


def _dist(mode, bound="tanh_mean", logits=LOGITS, mean=MEAN, log_std=LOG_STD, rows=1):
    row = torch.tensor([logits + mean + log_std], dtype=torch.float64).expand(rows, -1)
    return TorchHybridDistribution.from_logits(row, layout=FLAT, logp_mode=mode, bound=bound)


def _action(k=ACTION_K, x=ACTION_X):
    x = torch.tensor([x], dtype=torch.float64)
    return FLAT.to_env(torch.tensor([k]), x)


def _normal_logp(x, mu, sigma):
    return -0.5 * math.log(2 * math.pi) - math.log(sigma) - (x - mu) ** 2 / (2 * sigma ** 2)


SIGMA = [1.0, 2.0, 0.5]
LOC = [math.tanh(m) for m in MEAN]  # tanh_mean


def test_logp_by_hand_chosen_and_all():
    per_slot = [_normal_logp(x, mu, s) for x, mu, s in zip(ACTION_X, LOC, SIGMA, strict=True)]
    log_pk = math.log(0.25)
    # "chosen": action 2 owns slots 1 and 2; slot 0 (action 0's parameter) is not in it.
    chosen = _dist("chosen").logp_parts(_action())
    assert chosen[0].item() == pytest.approx(log_pk, abs=1e-12)
    assert chosen[1].item() == pytest.approx(per_slot[1] + per_slot[2], abs=1e-12)
    assert _dist("chosen").logp(_action()).item() == pytest.approx(-3.4860344, abs=1e-6)
    # "all": every slot.
    assert _dist("all").logp(_action()).item() == pytest.approx(log_pk + sum(per_slot),
                                                                abs=1e-12)
    assert _dist("all").logp(_action()).item() == pytest.approx(-4.4181139, abs=1e-6)
    # An action owning no parameter: only the discrete factor in "chosen".
    assert _dist("chosen").logp(_action(k=1)).item() == pytest.approx(math.log(0.5),
                                                                      abs=1e-12)


def test_squashed_logp_has_the_change_of_variables_term():
    x = [0.3, 0.9, -0.5]
    u = [math.atanh(v) for v in x]
    expected = math.log(0.25) + sum(
        _normal_logp(ui, mu, s) - math.log(1 - xi ** 2)
        for ui, xi, mu, s in zip(u[1:], x[1:], MEAN[1:], SIGMA[1:], strict=True))
    got = _dist("chosen", bound="squashed").logp(_action(x=x)).item()
    assert got == pytest.approx(expected, abs=1e-9)


def test_entropy_by_hand():
    h_k = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    h_slot = [0.5 * math.log(2 * math.pi * math.e * s ** 2) for s in SIGMA]
    chosen = h_k + 0.25 * h_slot[0] + 0.5 * 0.0 + 0.25 * (h_slot[1] + h_slot[2])
    assert _dist("chosen").entropy().item() == pytest.approx(chosen, abs=1e-12)
    assert _dist("chosen").entropy().item() == pytest.approx(2.1039247, abs=1e-6)
    assert _dist("all").entropy().item() == pytest.approx(h_k + sum(h_slot), abs=1e-12)
    h_k_part, h_x_part = _dist("chosen").entropy_parts()
    assert h_k_part.item() == pytest.approx(h_k, abs=1e-12)
    assert h_x_part.item() == pytest.approx(chosen - h_k, abs=1e-12)


def test_kl_by_hand():
    other = dict(logits=[0.0, 0.0, 0.0], mean=[0.0, 0.0, 0.0], log_std=[0.0, 0.0, 0.0])
    kl_cat = 0.25 * math.log(0.75) * 2 + 0.5 * math.log(1.5)
    kl_slot = [math.log(1.0 / s) + (s ** 2 + mu ** 2) / 2 - 0.5 for mu, s in zip(LOC, SIGMA,
                                                                                strict=True)]
    chosen = kl_cat + 0.25 * kl_slot[0] + 0.25 * (kl_slot[1] + kl_slot[2])
    assert _dist("chosen").kl(_dist("chosen", **other)).item() == pytest.approx(chosen, abs=1e-12)
    assert _dist("chosen").kl(_dist("chosen", **other)).item() == pytest.approx(0.4393388,
                                                                               abs=1e-6)
    assert _dist("all").kl(_dist("all", **other)).item() == pytest.approx(kl_cat + sum(kl_slot),
                                                                         abs=1e-12)
    # The squash is a bijection: the KL is the pre-squash one (means = the raw MEAN).
    kl_raw = [math.log(1.0 / s) + (s ** 2 + m ** 2) / 2 - 0.5 for m, s in zip(MEAN, SIGMA,
                                                                             strict=True)]
    squashed = _dist("chosen", bound="squashed").kl(_dist("chosen", bound="squashed", **other))
    assert squashed.item() == pytest.approx(
        kl_cat + 0.25 * kl_raw[0] + 0.25 * (kl_raw[1] + kl_raw[2]), abs=1e-12)
    assert _dist("all").kl(_dist("all")).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["chosen", "all"])
@pytest.mark.parametrize("bound", ["tanh_mean", "squashed"])
def test_monte_carlo_agrees_with_the_closed_forms(mode, bound):
    torch.manual_seed(0)
    n = 200_000
    other = dict(logits=[1.0, 0.0, -1.0], mean=[0.0, 0.3, 0.2], log_std=[0.3, 0.0, -0.2])
    p, q = _dist(mode, bound), _dist(mode, bound, **other)
    big_p, big_q = _dist(mode, bound, rows=n), _dist(mode, bound, rows=n, **other)
    action = big_p.sample()
    logp = big_p.logp(action)
    kl_mc = (logp - big_q.logp(action)).mean().item()
    assert kl_mc == pytest.approx(p.kl(q).item(), abs=0.02)
    if bound == "tanh_mean":  # the squashed entropy is the pre-squash Gaussian's, not E[-logp]
        assert (-logp).mean().item() == pytest.approx(p.entropy().item(), abs=0.02)


def test_deterministic_is_argmax_and_the_bounded_mean():
    greedy = _dist("chosen").to_deterministic()
    assert isinstance(greedy, TorchHybridDeterministic)
    k, *params = greedy.sample()
    assert k.tolist() == [1]
    torch.testing.assert_close(torch.cat(params, -1), torch.tensor([LOC], dtype=torch.float64))
    squashed = _dist("chosen", bound="squashed").to_deterministic().sample()
    torch.testing.assert_close(torch.cat(squashed[1:], -1),
                               torch.tanh(torch.tensor([MEAN], dtype=torch.float64)))
    # RLlib's GetActions records a log-prob for greedy actions too: zeros, as TorchDeterministic.
    torch.testing.assert_close(greedy.logp(greedy.sample()),
                               torch.zeros(1, dtype=torch.float64))


@pytest.mark.parametrize("space, layout", [
    (spaces.Tuple((spaces.Discrete(2), spaces.Tuple((BOX, spaces.Box(-1, 1, (2,)))))), None),
    (spaces.Tuple((spaces.Discrete(2), BOX, spaces.Box(-1, 1, (2,)))), None),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (3,)))), [1, 2]),
], ids=["nested", "flat_tuple", "flat_box"])
def test_every_layout_samples_in_the_env_structure_and_round_trips(space, layout):
    torch.manual_seed(0)
    lay = layout_from_space(space, layout)
    assert TorchHybridDistribution.required_input_dim(space, param_layout=layout) == 2 + 6
    logits = torch.randn(5, 8)
    dist = TorchHybridDistribution.from_logits(logits, layout=lay, bound="squashed")
    action = dist.sample()
    assert space.contains(tuple(_numpy_row(action, 0)))
    k, x = lay.from_env(action)
    assert k.shape == (5,) and x.shape == (5, 3)
    torch.testing.assert_close(dist.logp(lay.to_env(k, x)), dist.logp(action))


def _numpy_row(action, i):
    def row(part):
        if isinstance(part, tuple):
            return tuple(row(p) for p in part)
        value = part[i].numpy()
        return int(value) if value.ndim == 0 else value.astype("float32")
    return row(action)


def test_wrong_input_width_and_options_are_refused():
    with pytest.raises(ValueError, match=r"3 logits \+ 3 means \+ 3 log-stds = 9 columns"):
        TorchHybridDistribution.from_logits(torch.zeros(1, 8), layout=FLAT)
    with pytest.raises(ValueError, match="logp_mode must be one of"):
        TorchHybridDistribution.from_logits(torch.zeros(1, 9), layout=FLAT, logp_mode="some")
