"""The ``tune:`` section of experiment files: schedulers, search algorithms, concurrency and
checkpoint scoring checked with errors a user can act on and built into Tune objects, and an
``rllib-ext tune`` sweep under ASHA that is interrupted, resumed with its scheduler and ends
with the best trial's config, metric and checkpoint."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pytest

from rllib_ext.cli import runner
from rllib_ext.cli.config_file import load_experiment
from rllib_ext.cli.main import main
from rllib_ext.cli.result_callbacks import iteration_value, record_tune_metrics
from rllib_ext.cli.schema import CHECKPOINT_SCORE_KEY, EVALUATION_SCORE_KEY, ConfigError
from tests.helpers.interrupt import interrupt_at_iteration

BASE = textwrap.dedent(
    """
    algorithm: PG
    env: CartPole-v1
    config:
      training: {lr: 0.01, train_batch_size_per_learner: 64}
      env_runners: {num_env_runners: 0}
      rl_module: {model_config: {fcnet_hiddens: [4]}}
    stop: {training_iteration: 3}
    checkpoint_every: 1
    """
)


def _experiment(tmp_path: Path, tune: str, base: str = BASE):
    path = tmp_path / "exp.yaml"
    path.write_text(base + "tune:\n" + textwrap.indent(textwrap.dedent(tune), "  "))
    return load_experiment(path)


@pytest.mark.parametrize("tune, message", [
    ("schedular: asha", "unknown key 'schedular' in 'tune'. Did you mean 'scheduler'?"),
    ("scheduler: ashaa", "tune.scheduler: type 'ashaa' is not one of fifo, asha, "
                         "median_stopping, pbt. Did you mean 'asha'?"),
    ("scheduler: {max_t: 3}", "tune.scheduler: type missing is not one of"),
    ("scheduler: [asha]", "tune.scheduler must be a type name or a mapping"),
    ("scheduler: {type: asha, grace: 1}",
     "unknown key 'grace' in tune.scheduler (asha). Did you mean 'grace_period'?"),
    ("scheduler: {type: asha, reduction_factor: 1}",
     "tune.scheduler (asha).reduction_factor must be a number > 1, got 1."),
    ("scheduler: {type: asha, grace_period: 5}",
     "tune.scheduler (asha).grace_period must be a number > 0 and <= 3, got 5."),
    ("scheduler: {type: asha, time_attr: time_total_s}",
     "tune.scheduler (asha).max_t is required: the time_total_s at which ASHA stops"),
    ("scheduler: {type: asha, time_attr: env_steps}",
     "time_attr must be one of training_iteration, num_env_steps_sampled_lifetime, "
     "time_total_s, got 'env_steps'."),
    ("scheduler: {type: median_stopping, hard_stop: 1}", "hard_stop must be true or false"),
    ("scheduler: {type: pbt, hyperparam_mutations: {lr: {uniform: [0.001, 0.01]}}}",
     "tune.scheduler (pbt).perturbation_interval is required"),
    ("scheduler: {type: pbt, perturbation_interval: 1, hyperparam_mutations: "
     "{lrr: {uniform: [0.001, 0.01]}}}",
     "unknown key 'lrr' in tune.scheduler (pbt).hyperparam_mutations. Did you mean 'lr'?"),
    ("scheduler: {type: pbt, perturbation_interval: 1, hyperparam_mutations: "
     "{lr: {grid_search: [0.001, 0.01]}}}",
     "PBT cannot grid-search while it mutates; use {choice: [0.001, 0.01]}."),
    ("scheduler: {type: pbt, perturbation_interval: 1}",
     "tune.scheduler (pbt).hyperparam_mutations is required"),
    ("scheduler: {type: pbt, perturbation_interval: 1, hyperparam_mutations: "
     "{lr: {uniform: [0.001, 0.01]}}}\nnum_to_keep: 2",
     "tune.num_to_keep cannot be used with scheduler pbt"),
    ("scheduler: {type: pbt, perturbation_interval: 1, hyperparam_mutations: "
     "{lr: {uniform: [0.001, 0.01]}}}\nsearch_alg: optuna\n"
     "param_space: {lr: {uniform: [0.001, 0.01]}}",
     "Tune allows no search algorithm beside it: drop tune.search_alg optuna"),
    ("search_alg: randm", "Did you mean 'random'?"),
    ("search_alg: {type: random, seed: -1}",
     "tune.search_alg (random).seed must be an integer >= 0, got -1."),
    ("search_alg: grid\nparam_space: {lr: {loguniform: [0.001, 0.01]}}",
     "tune.search_alg grid runs every combination of grid_search values, but lr is not a "
     "grid_search"),
    ("search_alg: optuna\nparam_space: {lr: {grid_search: [0.001, 0.01]}}",
     "tune.search_alg optuna cannot grid-search (tune.param_space.lr)"),
    ("search_alg: hyperopt", "tune.search_alg hyperopt needs a tune.param_space to search."),
    ("max_concurrent_trials: 0", "tune.max_concurrent_trials must be an integer >= 1"),
    ("num_samples: 0", "tune.num_samples must be an integer >= 1, got 0."),
    ("metric: episode_return_mean",
     "tune.metric: 'episode_return_mean' is not a top-level result key."),
    ("checkpoint_score_attribute: env_runners/episode_return_mean\n"
     "checkpoint_score_order: best", "tune.checkpoint_score_order must be 'max' or 'min'"),
    ("num_to_keep: 0", "tune.num_to_keep must be an integer >= 1, got 0."),
    ("resources_per_trial: {cpu: 2}",
     "tune.resources_per_trial: an RLlib algorithm reserves its own resources per trial"),
])
def test_bad_tune_sections_name_the_problem_and_the_fix(tmp_path, tune, message):
    with pytest.raises(ConfigError) as error:
        _experiment(tmp_path, tune)
    assert message in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "exp.yaml"))


def test_checkpoint_scoring_needs_checkpoints_during_the_run(tmp_path):
    with pytest.raises(ConfigError, match="checkpoints only at the end: set checkpoint_every"):
        _experiment(tmp_path, "num_to_keep: 2", BASE.replace("checkpoint_every: 1", ""))
    # An evaluating config checkpoints on its evaluation iterations.
    evaluating = BASE.replace("checkpoint_every: 1", "").replace(
        "  rl_module:", "  evaluation: {evaluation_interval: 2}\n  rl_module:")
    exp = _experiment(tmp_path, "num_to_keep: 2", evaluating)
    assert exp.checkpoint_scoring() == (EVALUATION_SCORE_KEY, "max", 2)


def test_a_missing_optional_search_package_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real(name, *a))
    with pytest.raises(ConfigError) as error:
        _experiment(tmp_path, "search_alg: optuna\nparam_space: {lr: {uniform: [0.001, 0.01]}}")
    assert "needs the optional package 'optuna', which is not installed: pip install -e " \
           "'.[tune]'" in str(error.value)


def test_schedulers_and_search_algorithms_are_built_with_the_metric(tmp_path):
    from ray.tune.schedulers import (
        AsyncHyperBandScheduler,
        MedianStoppingRule,
        PopulationBasedTraining,
    )
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.sample import Domain

    exp = _experiment(tmp_path, """
        metric: env_runners/episode_len_mean
        mode: min
        param_space: {lr: {loguniform: [0.001, 0.01]}, baseline: {choice: [mean, value]}}
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        search_alg: {type: random, seed: 3}
        max_concurrent_trials: 2
        checkpoint_score_attribute: env_runners/episode_len_mean
        num_to_keep: 1
        """)
    asha = exp.scheduler()
    assert isinstance(asha, AsyncHyperBandScheduler)
    assert (asha.metric, asha._mode, asha._max_t, asha._reduction_factor) == (
        "env_runners/episode_len_mean", "min", 3, 2)  # max_t from stop.training_iteration
    tune_config = exp.tune_config(4)
    assert tune_config.num_samples == 4 and tune_config.max_concurrent_trials == 2
    assert isinstance(tune_config.search_alg, BasicVariantGenerator)
    assert exp.searched_keys() == ["lr", "baseline"]
    checkpoints = runner.checkpoint_config(exp, tuning=True)
    # A nested attribute is scored through the top-level copy; its order follows tune.mode.
    assert (checkpoints.checkpoint_score_attribute, checkpoints.checkpoint_score_order,
            checkpoints.num_to_keep, checkpoints.checkpoint_frequency) == (
        CHECKPOINT_SCORE_KEY, "min", 1, 1)
    assert runner.checkpoint_config(exp).checkpoint_score_attribute is None  # train: as before

    median = _experiment(tmp_path, "scheduler: {type: median_stopping, grace_period: 2}")
    assert isinstance(median.scheduler(), MedianStoppingRule)
    assert median.scheduler()._grace_period == 2

    pbt = _experiment(tmp_path, """
        scheduler:
          type: pbt
          perturbation_interval: 2
          hyperparam_mutations: {lr: {loguniform: [0.001, 0.01]}, baseline: {choice: [mean, none]}}
        """)
    scheduler = pbt.scheduler()
    assert isinstance(scheduler, PopulationBasedTraining)
    mutations = scheduler._hyperparam_mutations
    assert isinstance(mutations["lr"], Domain) and mutations["baseline"] == ["mean", "none"]
    assert pbt.searched_keys() == ["lr", "baseline"]
    # PBT restores trials from each other's checkpoints: all are kept.
    assert runner.checkpoint_config(pbt, tuning=True).num_to_keep is None


@pytest.mark.parametrize("kind", ["optuna", "hyperopt"])
def test_optional_search_algorithms(tmp_path, kind):
    pytest.importorskip(kind)
    exp = _experiment(tmp_path, f"""
        search_alg: {{type: {kind}, seed: 0}}
        param_space: {{lr: {{loguniform: [0.001, 0.01]}}}}
        """)
    searcher = exp.search_alg()
    assert searcher.metric == "env_runners/episode_return_mean" and searcher.mode == "max"


def test_record_tune_metrics_fills_the_metric_and_copies_the_score():
    result = {"env_runners": {"num_env_steps_sampled": 10}}
    record_tune_metrics(result=result, metric="env_runners/episode_return_mean",
                        score_metric="env_runners/num_env_steps_sampled")
    assert math.isnan(result["env_runners"]["episode_return_mean"])
    assert result[CHECKPOINT_SCORE_KEY] == 10.0
    # An evaluation metric scores only iterations that evaluated (RLlib repeats the last
    # evaluation's results in the next iteration, without the workers' health).
    metric = "evaluation/env_runners/episode_return_mean"
    repeated = {"evaluation": {"env_runners": {"episode_return_mean": 5.0}}}
    record_tune_metrics(result=repeated, metric=metric, score_metric=metric)
    assert math.isnan(repeated[CHECKPOINT_SCORE_KEY])
    evaluated = {"evaluation": {"num_healthy_workers": 0,
                                "env_runners": {"episode_return_mean": 5.0}}}
    record_tune_metrics(result=evaluated, metric=metric, score_metric=metric)
    assert evaluated[CHECKPOINT_SCORE_KEY] == 5.0
    assert math.isnan(iteration_value({"a": True}, "a"))  # a bool is no score


def test_tune_sweep_with_asha_resumes_with_its_scheduler(ray_session, tmp_path, capsys,
                                                         monkeypatch):
    import ray.cloudpickle as pickle
    from ray.tune.schedulers import AsyncHyperBandScheduler
    from ray.tune.search import BasicVariantGenerator

    exp = _experiment(tmp_path, """
        param_space: {lr: {grid_search: [0.001, 0.01]}}
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        search_alg: grid
        max_concurrent_trials: 1
        checkpoint_score_attribute: env_runners/episode_return_mean
        num_to_keep: 1
        """)
    storage = tmp_path / "runs"
    interrupt_at_iteration(monkeypatch, 2)
    assert main(["tune", str(exp.path), "--storage", str(storage)]) == 1
    (run_dir,) = storage.iterdir()
    out = capsys.readouterr().out
    assert ("searching lr by env_runners/episode_return_mean (max); scheduler asha, search "
            "grid; each trial reserves 1 CPU") in out
    assert "at most 1 at a time" in out

    # Tuner.restore rebuilds the run from tuner.pkl: the scheduler and the search algorithm
    # are the run's own.
    with (run_dir / "tuner.pkl").open("rb") as f:
        tune_config = pickle.load(f)["_tune_config"]
    assert isinstance(tune_config.scheduler, AsyncHyperBandScheduler)
    assert tune_config.scheduler.metric == "env_runners/episode_return_mean"
    assert isinstance(tune_config.search_alg, BasicVariantGenerator)
    assert tune_config.max_concurrent_trials == 1

    assert main(["tune", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    trial_lines = [line for line in out.splitlines() if line.startswith("PG_CartPole")]
    assert len(trial_lines) == 2, out
    assert all(re.search(r"  (ok|stopped early by the scheduler)", line)
               for line in trial_lines), out
    best_line = next(line for line in trial_lines if line.endswith("<- best"))
    best_trial = next(line for line in out.splitlines() if line.startswith("best trial:  "))
    assert best_trial.startswith(f"best trial:  {best_line.split()[0]}")
    assert "(env_runners/episode_return_mean " in best_trial and "mode max)" in best_trial
    assert re.search(r"^best config: lr=0\.0(01|1)$", out, re.MULTILINE), out
    checkpoint = next(line for line in out.splitlines() if line.startswith("best checkpoint: "))
    path = checkpoint.removeprefix("best checkpoint: ").split(" (")[0]
    assert Path(path, "rllib_checkpoint.json").is_file()
    assert "(env_runners/episode_return_mean " in checkpoint
    # num_to_keep 1: the best and the latest checkpoint of each trial are left.
    for trial_dir in (p for p in run_dir.iterdir() if p.is_dir()):
        assert 1 <= len(list(trial_dir.glob("checkpoint_*"))) <= 2
