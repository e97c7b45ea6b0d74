"""The shared lean replay: the sum/min tree, proportional sampling, importance weights."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_ext.core.replay import PRIORITY_EPS, SumMinTree, TransitionReplay


def _replay(capacity=4, alpha=0.0, seed=0):
    return TransitionReplay(capacity, {"x": ((), np.float32)}, alpha=alpha, seed=seed)


def test_tree_sums_minima_and_search_by_hand():
    tree = SumMinTree(5)  # 8 leaves
    tree.set(np.array([0, 1, 2, 4]), np.array([1.0, 2.0, 0.5, 4.0]))
    assert tree.total == 7.5 and tree.minimum == 0.5
    # Prefix sums 1, 3, 3.5, 3.5 (leaf 3 empty), 7.5: the mass m falls in leaf i.
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.99, 1.0, 2.9, 3.0, 3.49, 3.5, 7.4])),
                                  [0, 0, 1, 1, 2, 2, 4, 4])
    tree.set(np.array([1, 1]), np.array([9.0, 3.0]))  # repeated index: the last value wins
    assert tree.total == 8.5


def test_uniform_replay_ring_and_unit_weights():
    replay = _replay(capacity=3)
    for i in range(5):
        replay.add(x=[i])
    assert len(replay) == 3 and sorted(replay.columns["x"]) == [2, 3, 4]
    idx, weights = replay.sample_indices(100, beta=0.4)
    assert set(idx) <= {0, 1, 2} and np.all(weights == 1.0)


def test_prioritised_sampling_is_proportional_with_importance_weights_by_hand():
    replay = _replay(capacity=4, alpha=1.0)
    replay.add(x=[0, 1, 2, 3])
    replay.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]) - PRIORITY_EPS)
    idx, weights = replay.sample_indices(200_000, beta=0.5)
    freq = np.bincount(idx, minlength=4) / len(idx)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.005)
    # w_i = (N P(i))^-beta / max_k w_k = (P(i) / P_min)^-0.5: 1, 1/sqrt(2), 1/sqrt(3), 1/2.
    by_row = {int(i): float(w) for i, w in zip(idx[:1000], weights[:1000], strict=True)}
    for row, expected in enumerate([1.0, 2 ** -0.5, 3 ** -0.5, 0.5]):
        assert by_row[row] == pytest.approx(expected, rel=1e-5)


def test_new_rows_get_the_largest_priority_and_non_finite_errors_are_ignored():
    replay = _replay(capacity=4, alpha=0.6)
    replay.add(x=[0, 1])
    replay.update_priorities(np.array([0, 1]), np.array([9.0, np.nan]))
    tree = replay._tree
    leaf = tree.num_leaves
    assert tree.sums[leaf + 0] == pytest.approx((9 + PRIORITY_EPS) ** 0.6)
    assert tree.sums[leaf + 1] == pytest.approx(1.0)  # NaN: kept its initial priority
    replay.add(x=[2])
    assert tree.sums[leaf + 2] == pytest.approx((9 + PRIORITY_EPS) ** 0.6)


def test_empty_replay_refuses_to_sample():
    with pytest.raises(ValueError, match="empty"):
        _replay().sample_indices(1)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_state_round_trip_keeps_rows_position_priorities_and_rng(alpha):
    replay = _replay(capacity=5, alpha=alpha, seed=3)
    replay.add(x=np.arange(7.0))  # wrapped: rows [5, 6, 2, 3, 4], next write at row 2
    replay.update_priorities(np.array([0, 3]), np.array([4.0, 0.5]))
    replay.sample_indices(3)  # the RNG has moved on
    restored = _replay(capacity=5, alpha=alpha, seed=99)
    restored.set_state(replay.get_state())
    assert (len(restored), restored._next) == (5, 2)
    np.testing.assert_array_equal(restored.columns["x"], [5, 6, 2, 3, 4])
    if alpha:
        leaves = slice(replay._tree.num_leaves, replay._tree.num_leaves + 5)
        np.testing.assert_array_equal(restored._tree.sums[leaves], replay._tree.sums[leaves])
        assert (restored._tree.total, restored._tree.minimum, restored._max_priority) == (
            replay._tree.total, replay._tree.minimum, replay._max_priority)
    for a, b in zip(replay.sample_indices(50, beta=0.4), restored.sample_indices(50, beta=0.4),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    restored.add(x=[7.0])  # writing goes on where it stopped
    assert restored.columns["x"][2] == 7.0


def test_state_of_a_partly_filled_replay_holds_its_rows_only():
    replay = _replay(capacity=1000)
    replay.add(x=[1.0, 2.0])
    state = replay.get_state()
    assert state["columns"]["x"].shape == (2,)
    with pytest.raises(ValueError, match="capacity 1000 .* capacity 4"):
        _replay(capacity=4).set_state(state)
