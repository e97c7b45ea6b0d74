"""An experiment's Tune side: the search space, scheduler, search algorithm, checkpoint
scoring and trial names of ``rllib-ext tune`` (:class:`TuneFactory`, mixed into
:class:`~rllib_ext.cli.experiment.Experiment`), built from its checked ``tune:`` section."""

from __future__ import annotations

import functools

from rllib_ext.cli.result_callbacks import append_callback, record_tune_metrics
from rllib_ext.cli.schema import (
    CHECKPOINT_SCORE_KEY,
    DEFAULT_METRIC,
    EVALUATION_SCORE_KEY,
    EXTRA_SEARCH_ALGS,
    SEARCH_SPACES,
    ConfigError,
    require_extra,
    typed,
)


def searcher_trial_dirname(trial) -> str:
    """Trial directory names of sweeps with ``search_alg`` optuna or hyperopt, like those of
    random search: ``<trainable>_<env>_<trial id>_<n>_<searched values>_<date>`` (Tune's own
    names list every value of the config there)."""
    from ray.tune.search.variant_generator import format_vars
    from ray.tune.utils import date_str

    values = format_vars({(key,): value for key, value in trial.evaluated_params.items()})
    counter = str(trial.experiment_tag or "").split("_", 1)[0]
    return f"{trial}_{counter}_{values}"[:130] + f"_{date_str()}"


def search_space(where: str, spec):
    """``{grid_search: [...]}``, ``{choice: [...]}``, ``{uniform: [lo, hi]}``, ... -> Tune."""
    from ray import tune

    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SEARCH_SPACES:
        raise ConfigError(
            f"{where} must be a one-key mapping {{<kind>: <args>}} with kind one of "
            f"{', '.join(SEARCH_SPACES)}; got {spec!r}."
        )
    kind, args = next(iter(spec.items()))
    if not isinstance(args, list) or not args:
        raise ConfigError(f"{where}.{kind} needs a non-empty list, got {args!r}.")
    if kind == "grid_search":
        return tune.grid_search(args)
    if kind == "choice":
        return tune.choice(args)
    if len(args) != (3 if kind == "quniform" else 2):
        raise ConfigError(f"{where}.{kind} needs [low, high{', q' if kind == 'quniform' else ''}]"
                          f", got {args!r}.")
    return getattr(tune, kind)(*args)


def mutation(where: str, spec):
    """A PBT mutation from the search-space syntax: ``choice`` -> the list (PBT moves to a
    neighbouring value or resamples), ``uniform`` & co. -> the Tune domain (PBT scales the
    value by a perturbation factor or resamples); ``grid_search`` has no meaning here."""
    if isinstance(spec, dict) and len(spec) == 1 and "grid_search" in spec:
        raise ConfigError(f"{where}: PBT cannot grid-search while it mutates; use "
                          f"{{choice: {spec['grid_search']!r}}}.")
    domain = search_space(where, spec)
    return list(spec["choice"]) if "choice" in spec else domain


class TuneFactory:
    """Tune objects from an experiment's ``tune:`` section (``self.tune``) and its config
    sections; mixed into :class:`~rllib_ext.cli.experiment.Experiment`."""

    def param_space(self, config) -> dict:
        """Tune's ``param_space``: ``config`` as plain data (the values that differ from the
        algorithm's defaults; see :func:`rllib_ext.core.plain_config.plain_config_dict`),
        so that ``Tuner.restore`` needs no ``param_space`` to create trials that had not
        started, with the file's ``tune.param_space`` turned into Tune objects (left out for
        ``search_alg`` optuna or hyperopt: :meth:`search_alg` holds them, and the searcher's
        suggestions are merged into this dict).

        Its trials also run :func:`record_tune_metrics` after each iteration (on a copy of
        ``config``): ``tune.metric`` is in every result, as Tune's schedulers and search
        algorithms demand, and a nested ``tune.checkpoint_score_attribute`` is copied to
        :data:`CHECKPOINT_SCORE_KEY`."""
        from rllib_ext.core.plain_config import plain_config_dict

        config = config.copy(copy_frozen=False)
        append_callback(config, "on_train_result", functools.partial(
            record_tune_metrics, metric=self.tune_metric,
            score_metric=self.tune.get("checkpoint_score_attribute")))
        space = plain_config_dict(config)
        if typed(self.tune.get("search_alg"))[0] not in EXTRA_SEARCH_ALGS:
            space.update(self._search_domains())
        return space

    def _search_domains(self) -> dict:
        """``tune.param_space`` as Tune search spaces."""
        return {key: search_space(key, spec)
                for key, spec in (self.tune.get("param_space") or {}).items()}

    @property
    def tune_metric(self) -> str:
        """The metric trials are ranked by (``tune.metric``)."""
        return self.tune.get("metric", DEFAULT_METRIC)

    @property
    def tune_mode(self) -> str:
        """``"max"`` or ``"min"`` (``tune.mode``)."""
        return self.tune.get("mode", "max")

    def searched_keys(self) -> list[str]:
        """The config keys a sweep varies: ``tune.param_space``'s and, for PBT, those of
        ``hyperparam_mutations``."""
        keys = list(self.tune.get("param_space") or {})
        _, options = typed(self.tune.get("scheduler"))
        keys += [k for k in options.get("hyperparam_mutations") or {} if k not in keys]
        return keys

    def tune_config(self, num_samples: int):
        """Tune's ``TuneConfig`` of ``rllib-ext tune``: samples, scheduler, search algorithm
        and ``max_concurrent_trials`` (the scheduler and search algorithm get ``tune.metric``
        and ``tune.mode`` themselves; Tune keeps them in the run for ``Tuner.restore``)."""
        from ray import tune

        searcher = typed(self.tune.get("search_alg"))[0] in EXTRA_SEARCH_ALGS
        return tune.TuneConfig(num_samples=num_samples, scheduler=self.scheduler(),
                               search_alg=self.search_alg(),
                               max_concurrent_trials=self.tune.get("max_concurrent_trials"),
                               trial_dirname_creator=searcher_trial_dirname if searcher
                               else None)

    def scheduler(self):
        """``tune.scheduler`` as a Tune trial scheduler; None without one (Tune: FIFO)."""
        from ray.tune import schedulers

        kind, options = typed(self.tune.get("scheduler"))
        if kind is None:
            return None
        if kind == "fifo":
            return schedulers.FIFOScheduler()
        common = {"time_attr": options.get("time_attr", "training_iteration"),
                  "metric": self.tune_metric, "mode": self.tune_mode}
        if kind == "asha":
            return schedulers.ASHAScheduler(
                **common, max_t=options.get("max_t", self.stop.get(common["time_attr"])),
                grace_period=options.get("grace_period", 1),
                reduction_factor=options.get("reduction_factor", 4),
                brackets=options.get("brackets", 1))
        if kind == "median_stopping":
            return schedulers.MedianStoppingRule(
                **common, grace_period=options.get("grace_period", 1),
                min_samples_required=options.get("min_samples_required", 3),
                min_time_slice=options.get("min_time_slice", 0),
                hard_stop=options.get("hard_stop", True))
        mutations = {key: mutation(f"tune.scheduler.hyperparam_mutations.{key}", spec)
                     for key, spec in options["hyperparam_mutations"].items()}
        return schedulers.PopulationBasedTraining(
            **common, perturbation_interval=options["perturbation_interval"],
            burn_in_period=options.get("burn_in_period", 0), hyperparam_mutations=mutations,
            quantile_fraction=options.get("quantile_fraction", 0.25),
            resample_probability=options.get("resample_probability", 0.25),
            perturbation_factors=tuple(options.get("perturbation_factors", (1.2, 0.8))),
            synch=options.get("synch", False))

    def search_alg(self):
        """``tune.search_alg`` as a Tune search algorithm; None without one (Tune: random and
        grid search, as ``random``)."""
        kind, options = typed(self.tune.get("search_alg"))
        if kind is None:
            return None
        if kind in ("random", "grid"):
            from ray.tune.search import BasicVariantGenerator

            return BasicVariantGenerator(random_state=options.get("seed"))
        require_extra(str(self.path), kind)
        if kind == "optuna":
            from ray.tune.search.optuna import OptunaSearch

            return OptunaSearch(space=self._search_domains(), metric=self.tune_metric,
                                mode=self.tune_mode, seed=options.get("seed"))
        from ray.tune.search.hyperopt import HyperOptSearch

        # The space is the searcher's own: given the whole config, HyperOpt would hand every
        # list in it back as a tuple.
        return HyperOptSearch(space=self._search_domains(), metric=self.tune_metric,
                              mode=self.tune_mode,
                              random_state_seed=options.get("seed"),
                              n_initial_points=options.get("n_initial_points", 20))

    def checkpoint_scoring(self) -> tuple[str | None, str, int | None] | None:
        """(result key Tune scores checkpoints by, ``"max"``/``"min"``, checkpoints to keep)
        from the ``tune:`` checkpoint keys; None when the file sets none of them. The key is
        :data:`CHECKPOINT_SCORE_KEY` for a nested attribute, :data:`EVALUATION_SCORE_KEY`
        when only ``num_to_keep`` is set and the config evaluates, None (keep the latest)
        when it does not. Under PBT every checkpoint is kept: it restores trials from other
        trials' checkpoints, which Tune would otherwise delete."""
        pbt = typed(self.tune.get("scheduler"))[0] == "pbt"
        if not pbt and not any(k in self.tune for k in (
                "checkpoint_score_attribute", "checkpoint_score_order", "num_to_keep")):
            return None
        attribute = self.tune.get("checkpoint_score_attribute")
        order = self.tune.get("checkpoint_score_order") or (
            self.tune_mode if attribute == self.tune_metric else "max")
        if attribute is None:
            key = EVALUATION_SCORE_KEY if self.evaluation_interval else None
        else:
            key = CHECKPOINT_SCORE_KEY if "/" in attribute else attribute
        return key, order, None if pbt else self.tune.get("num_to_keep")
