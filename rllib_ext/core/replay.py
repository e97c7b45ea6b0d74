"""Lean transition replay shared by the off-policy algorithms: flat numpy ring buffers with
uniform or proportional-prioritised sampling.

RLlib's episode replay buffers rebuild episodes and run the learner connector for every sample;
on a small machine that costs more than the gradient step itself (SAC: ~32 % of an update in
``PrioritizedEpisodeReplayBuffer.sample``). Here transitions are cut out of the sampled
episodes once, stored column-wise, and a batch is one fancy-index per column.

Proportional prioritisation (Schaul et al. 2016, sec. 3.3): transition i is drawn with
probability ``P(i) = p_i / sum_k p_k``, ``p_i = (|delta_i| + eps)^alpha``; new transitions get
the largest priority so far; the importance weights ``w_i = (N P(i))^-beta / max_k w_k``
correct the bias (``max_k w_k`` from the smallest priority, so every weight is <= 1).
"""

from __future__ import annotations

import numpy as np

#: Batch column of the replay rows a batch was drawn from (for priority updates).
REPLAY_INDEX = "replay_index"
#: Batch column of the importance-sampling weights (ones for uniform sampling).
IS_WEIGHTS = "weights"
#: Added to |TD error| so no transition's priority is 0 (Schaul et al.'s epsilon).
PRIORITY_EPS = 1e-6


class SumMinTree:
    """Binary segment tree over ``capacity`` leaves keeping sums and minima, updated and
    searched for many leaves at once (one numpy operation per tree level)."""

    def __init__(self, capacity: int):
        self.num_leaves = 1 << max(0, int(capacity) - 1).bit_length()
        self.sums = np.zeros(2 * self.num_leaves)
        self.mins = np.full(2 * self.num_leaves, np.inf)

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """leaf[indices] = values (for a repeated index the last value wins)."""
        nodes = np.asarray(indices, np.int64) + self.num_leaves
        self.sums[nodes] = values  # numpy assigns repeated indices in order: last one wins
        self.mins[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes.size and nodes[-1] >= 1:
            self.sums[nodes] = self.sums[2 * nodes] + self.sums[2 * nodes + 1]
            self.mins[nodes] = np.minimum(self.mins[2 * nodes], self.mins[2 * nodes + 1])
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def minimum(self) -> float:
        return float(self.mins[1])

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each ``m`` in [0, total): the leaf i with sum(leaf[:i]) <= m < sum(leaf[:i+1])."""
        mass = np.asarray(mass, np.float64).copy()
        nodes = np.ones(len(mass), np.int64)
        while self.num_leaves > 1 and nodes[0] < self.num_leaves:
            left = 2 * nodes
            right = mass >= self.sums[left]  # >=: a zero-sum left subtree is never entered
            mass = np.where(right, mass - self.sums[left], mass)
            nodes = np.where(right, left + 1, left)
        return nodes - self.num_leaves


class TransitionReplay:
    """Column-wise ring buffer of transitions; the oldest are overwritten.

    Args:
        capacity: Transitions kept.
        columns: ``{key: (per-row shape, dtype)}`` of the stored columns.
        alpha: Prioritisation exponent: 0 (default) samples uniformly (no tree is kept);
            > 0 samples proportionally to ``(|TD error| + eps)^alpha`` (0.6 typical).
        seed: Seed of the sampling RNG.
    """

    def __init__(self, capacity: int, columns: dict[str, tuple[tuple[int, ...], type]], *,
                 alpha: float = 0.0, seed=None):
        self.capacity = int(capacity)
        self.columns = {key: np.zeros((self.capacity, *shape), dtype)
                        for key, (shape, dtype) in columns.items()}
        self.alpha = float(alpha)
        self._tree = SumMinTree(self.capacity) if self.prioritized else None
        self._max_priority = 1.0
        self.size = 0
        self._next = 0
        self._rng = np.random.default_rng(seed)

    @property
    def prioritized(self) -> bool:
        return self.alpha > 0

    def __len__(self) -> int:
        return self.size

    def add(self, **columns: np.ndarray) -> np.ndarray:
        """Appends n transitions given column-wise (every column has n rows); returns their
        rows. New transitions get the largest priority so far (prioritised replay)."""
        n = len(next(iter(columns.values())))
        if n == 0:
            return np.zeros(0, np.int64)
        idx = (self._next + np.arange(n)) % self.capacity
        for key, values in columns.items():
            self.columns[key][idx] = values
        if self._tree is not None:
            self._tree.set(idx, np.full(n, self._max_priority ** self.alpha))
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return idx

    def sample_indices(self, n: int, beta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """n rows drawn with replacement, and their importance weights (ones if uniform or
        ``beta`` = 0)."""
        if self.size == 0:
            raise ValueError("Cannot sample from an empty replay.")
        if self._tree is None:
            return self._rng.integers(0, self.size, size=n), np.ones(n, np.float32)
        total = self._tree.total
        idx = np.minimum(self._tree.find(self._rng.random(n) * total), self.size - 1)
        if beta == 0:
            return idx, np.ones(n, np.float32)
        probs = self._tree.sums[idx + self._tree.num_leaves] / total
        # w_i / max_k w_k = (P(i) / P_min)^-beta.
        weights = (probs / (self._tree.minimum / total)) ** (-beta)
        return idx, weights.astype(np.float32)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The stored columns at rows ``idx``."""
        return {key: values[idx] for key, values in self.columns.items()}

    def sample(self, n: int) -> dict[str, np.ndarray]:
        """n transitions (uniformly, or by priority) with replacement, columns only."""
        return self.gather(self.sample_indices(n)[0])

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i = (|td_i| + eps)^alpha for the given rows; non-finite TD errors are ignored
        (the row keeps its priority)."""
        if self._tree is None:
            return
        td = np.abs(np.asarray(td_errors, np.float64).reshape(-1))
        idx = np.asarray(idx, np.int64).reshape(-1)
        finite = np.isfinite(td)
        if not finite.any():
            return
        priorities = td[finite] + PRIORITY_EPS
        self._max_priority = max(self._max_priority, float(priorities.max()))
        self._tree.set(idx[finite], priorities ** self.alpha)

    def get_state(self) -> dict:
        """The contents as a picklable dict: the ``size`` filled rows of every column, the
        write position, the sampling RNG's state and, when prioritised, the rows' priorities
        (``p_i^alpha``) and the largest priority so far. Costs ``size`` x row bytes."""
        state = {
            "capacity": self.capacity,
            "size": self.size,
            "next": self._next,
            "columns": {key: values[: self.size].copy() for key, values in self.columns.items()},
            "rng": self._rng.bit_generator.state,
        }
        if self._tree is not None:
            leaves = self._tree.sums[self._tree.num_leaves: self._tree.num_leaves + self.size]
            state.update(priorities=leaves.copy(), max_priority=self._max_priority)
        return state

    def set_state(self, state: dict) -> None:
        """Restores what :meth:`get_state` returned, into a replay of the same capacity and
        columns. Priorities are restored when both replays are prioritised (a uniform
        replay ignores them; a prioritised one restored from a uniform state gives every
        row the same priority)."""
        if state["capacity"] != self.capacity or set(state["columns"]) != set(self.columns):
            raise ValueError(
                f"Cannot restore a replay of capacity {state['capacity']} with columns "
                f"{sorted(state['columns'])} into one of capacity {self.capacity} with columns "
                f"{sorted(self.columns)}; restore with the config the state was saved with.")
        size = int(state["size"])
        for key, values in state["columns"].items():
            self.columns[key][:size] = values
        self.size, self._next = size, int(state["next"])
        self._rng.bit_generator.state = state["rng"]
        if self._tree is not None:
            self._tree = SumMinTree(self.capacity)
            self._max_priority = float(state.get("max_priority", 1.0))
            priorities = state.get("priorities")
            if priorities is None:
                priorities = np.full(size, self._max_priority ** self.alpha)
            if size:
                self._tree.set(np.arange(size), priorities)


def episode_transitions(episode) -> dict[str, np.ndarray]:
    """The (s, s', r, terminated) columns of every step of an RLlib ``SingleAgentEpisode``
    chunk, observations flattened to float32 rows.

    The last step is terminal only if the env *terminated* the episode; a truncated
    (time-limited) or still running chunk bootstraps from its next observation.
    """
    from ray.rllib.core.columns import Columns

    steps = len(episode)
    obs = np.asarray(episode.get_observations(), np.float32).reshape(steps + 1, -1)
    terminated = np.zeros(steps, np.float32)
    terminated[-1] = float(episode.is_terminated)
    return {
        Columns.OBS: obs[:-1],
        Columns.NEXT_OBS: obs[1:],
        Columns.REWARDS: np.asarray(episode.get_rewards(), np.float32).reshape(steps),
        Columns.TERMINATEDS: terminated,
    }
