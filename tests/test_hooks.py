"""Inverting gradients and the other action-gradient strategies, against hand numbers."""

from __future__ import annotations

import pytest
import torch

from rllib_ext.hooks import ActionGradientHook, invert_gradients, zero_past_bounds


@pytest.mark.parametrize("grad, value, expected", [
    # Inside [-1, 1]: scale by the distance to the bound the gradient heads for, / (high - low).
    (2.0, 0.5, 2.0 * (1 - 0.5) / 2),      # 0.5: increasing, 0.5 left of 2
    (-2.0, 0.5, -2.0 * (0.5 + 1) / 2),    # -1.5: decreasing, 1.5 left of 2
    # At a bound: no further push outwards, full push inwards.
    (1.0, 1.0, 0.0),
    (-1.0, 1.0, -1.0),
    (-1.0, -1.0, 0.0),
    # Past a bound: the sign flips and pushes the value back inside.
    (1.0, 1.5, -0.25),
    (-1.0, -1.5, 0.25),
    # Zero gradient stays zero.
    (0.0, 0.3, 0.0),
])
def test_invert_gradients_by_hand(grad, value, expected):
    out = invert_gradients(torch.tensor([grad]), torch.tensor([value]), -1.0, 1.0)
    assert out.item() == pytest.approx(expected)


def test_per_dimension_bounds_broadcast_and_inputs_untouched():
    grad = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    values = torch.tensor([[0.25, 0.0], [1.0, 1.0]])
    low, high = torch.tensor([0.0, -2.0]), torch.tensor([1.0, 2.0])
    before = grad.clone(), values.clone()
    out = invert_gradients(grad, values, low, high)
    # dim 0 in [0, 1]: (1 - .25) / 1 = .75 and (1 - 1) = 0; dim 1 in [-2, 2]: decreasing from 0:
    # -(0 + 2) / 4 = -.5; increasing from 1: (2 - 1) / 4 = .25.
    torch.testing.assert_close(out, torch.tensor([[0.75, -0.5], [0.0, 0.25]]))
    torch.testing.assert_close(grad, before[0])
    torch.testing.assert_close(values, before[1])
    assert invert_gradients(grad.double(), values.double(), low, high).dtype == torch.float64


def test_zero_strategy_only_blocks_outward_pushes():
    grad = torch.tensor([1.0, -1.0, 1.0, -1.0])
    values = torch.tensor([1.0, 1.0, 0.5, -1.2])
    torch.testing.assert_close(zero_past_bounds(grad, values, -1, 1),
                               torch.tensor([0.0, -1.0, 1.0, 0.0]))


def test_hook_strategies():
    grad, values = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5])
    assert torch.equal(ActionGradientHook("invert")(grad, values, -1, 1),
                       invert_gradients(grad, values, -1, 1))
    for name in ("none", "squash"):
        assert torch.equal(ActionGradientHook(name)(grad, values, -1, 1), grad)
    with pytest.raises(ValueError, match="choose one of"):
        ActionGradientHook("clip")
