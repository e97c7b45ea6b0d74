"""Every point of a sweep checked before its first trial, as Tune would check it.

Tune asks the algorithm for a trial's resources (``Algorithm.default_resource_request``, which
builds and validates the trial's config) when it creates the trial, in the driver: an invalid
combination used to stop a sweep there, mid-run, with a traceback. :func:`check_sweep` makes
that same call for every point of the search space before Ray starts:

- every value of every ``grid_search`` and ``choice`` (and of PBT's ``hyperparam_mutations``
  lists), all combinations;
- for ``uniform``, ``loguniform``, ``quniform`` and ``randint``: both ends of the range and
  :data:`DRAWS` draws with a fixed seed (:data:`SEED`), drawn for every key together and
  crossed with the combinations above.

Invalid points are grouped by their error: one line per group, with the values its points
share, the reason and the fix (the algorithm's own ``validate()`` message).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from rllib_ext.cli.experiment import Experiment
from rllib_ext.cli.schema import RLLIB_SUPPRESS_HINT, typed

#: Random draws of the range domains checked per combination of the finite values.
DRAWS = 8
#: Seed of those draws: the same points are checked every time.
SEED = 0


@dataclass
class InvalidPoints:
    """Points of a sweep that fail validation with the same message."""

    message: str
    points: list[dict] = field(default_factory=list)

    def describe(self, total: int) -> str:
        """One line: how many points, the values they share, the reason and the fix."""
        keys = list(self.points[0])
        shared = {k: self.points[0][k] for k in keys
                  if all(p[k] == self.points[0][k] for p in self.points)}
        varied = [k for k in keys if k not in shared]
        if shared:
            which = "all with " + ", ".join(f"{k}={v!r}" for k, v in shared.items())
            if varied:
                which += f" ({', '.join(varied)} varied)"
        else:
            which = "e.g. " + ", ".join(f"{k}={v!r}" for k, v in self.points[0].items())
        return f"{len(self.points)} of {total} checked points, {which}, are invalid: {self.message}"


@dataclass
class SweepCheck:
    """The outcome of :func:`check_sweep`."""

    points: int
    invalid: list[InvalidPoints]

    @property
    def ok(self) -> bool:
        return not self.invalid


def validation_message(error: BaseException) -> str:
    """A validation error as one line: RLlib's hint on switching validation off dropped."""
    text = str(error).split(RLLIB_SUPPRESS_HINT)[0]
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def sweep_points(experiment: Experiment, *, draws: int = DRAWS, seed: int = SEED) -> list[dict]:
    """The points :func:`check_sweep` checks (key -> value), in a fixed order; ``[{}]`` for an
    experiment without a search space."""
    import numpy as np

    from rllib_ext.cli.tune_factory import search_space

    finite: dict[str, list] = {}
    ranges: dict[str, object] = {}
    for key, spec in _searched_specs(experiment):
        kind, args = next(iter(spec.items()))
        if kind in ("grid_search", "choice"):
            finite[key] = list(args)
        else:
            ranges[key] = search_space(key, spec)
    rows = [{}]
    if ranges:
        rng = np.random.RandomState(seed)
        ends = [{k: _end(d, low=True) for k, d in ranges.items()},
                {k: _end(d, low=False) for k, d in ranges.items()}]
        drawn = [{k: _plain(d.sample(random_state=rng)) for k, d in ranges.items()}
                 for _ in range(draws)]
        rows = ends + drawn
    combos = itertools.product(*finite.values())
    return [{**dict(zip(finite, combo, strict=True)), **row} for combo in combos for row in rows]


def check_sweep(experiment: Experiment, config, *, draws: int = DRAWS,
                seed: int = SEED) -> SweepCheck:
    """Validates the trial config of every point of ``experiment``'s sweep (``config``: the
    experiment's built config, as the sweep's trials start from it) with the call Tune makes
    when it creates a trial. Needs no Ray."""
    algorithm = experiment.algorithm_class()
    base = experiment.param_space(config)
    points = sweep_points(experiment, draws=draws, seed=seed)
    groups: dict[str, InvalidPoints] = {}
    for point in points:
        try:
            algorithm.default_resource_request({**base, **point})
        except ValueError as e:
            message = validation_message(e)
            groups.setdefault(message, InvalidPoints(message)).points.append(point)
    return SweepCheck(points=len(points), invalid=list(groups.values()))


def _searched_specs(experiment: Experiment) -> Iterable[tuple[str, dict]]:
    """(key, search-space spec) of ``tune.param_space`` and of PBT's mutations (a list there
    is a ``choice``) for the keys the param_space does not set."""
    space = dict(experiment.tune.get("param_space") or {})
    yield from space.items()
    _, options = typed(experiment.tune.get("scheduler"))
    for key, spec in (options.get("hyperparam_mutations") or {}).items():
        if key not in space:
            yield key, {"choice": spec} if isinstance(spec, list) else spec


def _end(domain, *, low: bool):
    """The lowest or highest value ``domain`` (a Tune Float or Integer) can take."""
    from ray.tune.search.sample import Integer

    if low:
        return _plain(domain.lower)
    # Tune's randint excludes its upper bound.
    return _plain(domain.upper - 1 if isinstance(domain, Integer) else domain.upper)


def _plain(value):
    """A numpy scalar as the Python number a trial config holds."""
    return value.item() if hasattr(value, "item") else value
