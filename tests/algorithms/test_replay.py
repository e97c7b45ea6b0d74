"""The shared lean replay: the sum/min tree, proportional sampling, importance weights."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_ext.algorithms.replay import PRIORITY_EPS, SumMinTree, TransitionReplay


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
