"""Accepted and rejected parameterised action-space forms."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces

from rllib_ext.core.parameterised.action_layout import (
    FLAT_BOX,
    FLAT_TUPLE,
    NESTED,
    layout_from_space,
)

BOX1 = spaces.Box(-1, 1, (1,))
BOX2 = spaces.Box(-1, 1, (2,))


def test_layouts_of_the_accepted_forms():
    nested = layout_from_space(spaces.Tuple((spaces.Discrete(2), spaces.Tuple((BOX2, BOX1)))))
    assert (nested.form, nested.param_dims, nested.offsets) == (NESTED, (2, 1), (0, 2, 3))
    flat = layout_from_space(spaces.Tuple((spaces.Discrete(2), BOX2, BOX1)))
    assert (flat.form, flat.param_dims) == (FLAT_TUPLE, (2, 1))
    box = layout_from_space(spaces.Tuple((spaces.Discrete(3), BOX2)), param_layout=[1, 0, 1])
    assert (box.form, box.param_dims, box.offsets) == (FLAT_BOX, (1, 0, 1), (0, 1, 1, 2))
    torch.testing.assert_close(box.owner_mask(), torch.tensor([[1.0, 0], [0, 0], [0, 1.0]]))
    k, params = torch.tensor([2]), torch.tensor([[0.1, 0.2, 0.3]])
    env_action = nested.to_env(k, params)
    assert env_action[0] is k
    torch.testing.assert_close(env_action[1][0], torch.tensor([[0.1, 0.2]]))
    torch.testing.assert_close(env_action[1][1], torch.tensor([[0.3]]))


@pytest.mark.parametrize("space, layout, match", [
    (spaces.Discrete(3), None, "Tuple whose first element is Discrete"),
    (spaces.Tuple((BOX1, spaces.Discrete(2))), None, "first element must be Discrete"),
    (spaces.Tuple((spaces.Discrete(3), BOX2)), None, "ambiguous; set training\\(param_layout"),
    (spaces.Tuple((spaces.Discrete(3), BOX1, BOX1)), None, "3 discrete actions but 2"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (2, 2)), BOX1)), None, "1-D Box"),
    (spaces.Tuple((spaces.Discrete(3), BOX2)), [1, 1, 1], "summing to 2"),
    (spaces.Tuple((spaces.Discrete(2), BOX1, BOX1)), [1, 1], "only for a flat"),
])
def test_rejected_forms_name_the_space_and_the_fix(space, layout, match):
    with pytest.raises(ValueError, match=match) as info:
        layout_from_space(space, layout)
    assert str(space) in str(info.value) or "param_layout" in str(info.value)
