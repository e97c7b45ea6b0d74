"""A sweep's search space is checked whole before its first trial.

- Every shipped sweep and config is valid at every point that ``rllib-ext tune`` checks (the
  full grids, no trimming; no training), and ``rllib-ext check --dry-run`` says so.
- The points checked: every grid / choice value, all combinations, crossed with both ends and
  fixed-seed draws of each range.
- A sweep with an invalid combination exits 2 with one line per reason, before Ray starts.
- A trial whose config still fails validation (a point the check did not see) ends alone,
  with the reason in its outcome, and the other trials run.
"""

from __future__ import annotations

import textwrap

import gymnasium as gym
import pytest
import yaml

from rllib_ext.cli import runner
from rllib_ext.cli.config_file import list_config_files, list_sweep_files, load_experiment
from rllib_ext.cli.main import main
from rllib_ext.cli.schema import ConfigError
from rllib_ext.cli.sweep_check import DRAWS, check_sweep, sweep_points

SWEEPS = list_sweep_files()
CONFIGS = list_config_files()
#: PG's own validation message for the optimal baseline with normalised advantages.
OPTIMAL_REASON = ("baseline='optimal' computes its own per-parameter baseline in the learner; "
                  "normalize_advantages=True would subtract the batch mean first. Call "
                  "config.training(baseline='optimal', normalize_advantages=False)")

TINY_PG = textwrap.dedent(
    """
    algorithm: PG
    env: CartPole-v1
    config:
      training: {lr: 0.01, train_batch_size_per_learner: 100, normalize_advantages: true}
      env_runners: {num_env_runners: 0}
      rl_module: {model_config: {fcnet_hiddens: [8]}}
    stop: {training_iteration: 1}
    tune:
      param_space:
        baseline: {grid_search: [mean, optimal, time_mean]}
        lr: {loguniform: [0.001, 0.01]}
    """
)


def _expected_points(exp) -> int:
    """Every combination of the finite values, times both ends and DRAWS draws of the ranges."""
    from rllib_ext.cli.sweep_check import _searched_specs

    finite, ranges = 1, False
    for _, spec in _searched_specs(exp):
        kind, args = next(iter(spec.items()))
        if kind in ("grid_search", "choice"):
            finite *= len(args)
        else:
            ranges = True
    return finite * (2 + DRAWS if ranges else 1)


@pytest.mark.parametrize("path", [*SWEEPS, *CONFIGS], ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_sweep_and_config_is_valid_at_every_point(path):
    exp = load_experiment(path)
    checked = check_sweep(exp, exp.build_config())
    assert checked.ok, [group.describe(checked.points) for group in checked.invalid]
    assert checked.points == _expected_points(exp)


def test_the_pg_sweep_compares_all_five_baselines():
    exp = load_experiment(next(p for p in SWEEPS if p.stem == "pg_cartpole"))
    baselines = {point["baseline"] for point in sweep_points(exp)}
    assert baselines == {"none", "mean", "time_mean", "optimal", "value"}


def test_the_points_cover_every_grid_value_both_ends_and_fixed_draws(tmp_path):
    path = tmp_path / "sweep.yaml"
    raw = yaml.safe_load(TINY_PG)
    raw["tune"]["param_space"]["gamma"] = {"choice": [0.9, 0.99]}
    raw["tune"]["param_space"]["train_batch_size_per_learner"] = {"randint": [100, 200]}
    path.write_text(yaml.safe_dump(raw))
    exp = load_experiment(path)
    points = sweep_points(exp)
    assert len(points) == 3 * 2 * (2 + DRAWS)
    assert {(p["baseline"], p["gamma"]) for p in points} == {
        (b, g) for b in ("mean", "optimal", "time_mean") for g in (0.9, 0.99)}
    lrs = [p["lr"] for p in points]
    sizes = [p["train_batch_size_per_learner"] for p in points]
    # The ends of each range (randint excludes its upper bound), and draws inside it.
    assert min(lrs) == 0.001 and max(lrs) == 0.01
    assert min(sizes) == 100 and max(sizes) == 199
    assert all(isinstance(s, int) for s in sizes) and all(type(x) is float for x in lrs)
    assert len(set(lrs)) == 2 + DRAWS
    assert sweep_points(exp) == points  # fixed seed: the same points every time


def test_invalid_points_are_grouped_by_reason_with_the_values_they_share(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(TINY_PG)
    exp = load_experiment(path)
    checked = check_sweep(exp, exp.build_config())
    assert checked.points == 3 * (2 + DRAWS)
    [group] = checked.invalid
    assert len(group.points) == 2 + DRAWS
    line = group.describe(checked.points)
    assert line.startswith(f"{2 + DRAWS} of {checked.points} checked points, all with "
                           "baseline='optimal' (lr varied), are invalid: " + OPTIMAL_REASON)
    assert "\n" not in line and "To suppress" not in line


def test_a_sweep_with_an_invalid_point_exits_2_before_ray_starts(tmp_path, capsys, monkeypatch):
    path = tmp_path / "sweep.yaml"
    path.write_text(TINY_PG)

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for an invalid sweep")

    monkeypatch.setattr(runner, "init_ray", no_ray)
    storage = tmp_path / "runs"
    assert main(["tune", str(path), "--storage", str(storage)]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rllib-ext tune: error: {path}: {2 + DRAWS} of {3 * (2 + DRAWS)} "
                               "checked points, all with baseline='optimal' (lr varied), are "
                               "invalid: baseline='optimal' computes")
    assert "normalize_advantages=False" in lines[0]
    assert not storage.exists() and out == ""


def test_a_trial_that_fails_validation_ends_alone_with_the_reason(ray_session, tmp_path,
                                                                 monkeypatch):
    """A point the check did not see (here: the check is bypassed) ends its own trial; the
    other trials of the sweep run."""
    from ray import tune

    path = tmp_path / "sweep.yaml"
    raw = yaml.safe_load(TINY_PG)
    raw["tune"]["param_space"] = {"baseline": {"grid_search": ["mean", "optimal"]}}
    path.write_text(yaml.safe_dump(raw))
    exp = load_experiment(path)
    config = exp.build_config()
    _, outcomes = runner.run(exp, param_space=exp.param_space(config),
                             stop={"training_iteration": 1}, storage=str(tmp_path / "runs"),
                             tune_config=tune.TuneConfig(num_samples=1))
    by_baseline = {("optimal" if "baseline=optimal" in o.path else "mean"): o
                   for o in outcomes}
    assert len(by_baseline) == 2, [o.path for o in outcomes]
    assert by_baseline["mean"].error is None and by_baseline["mean"].finished
    error = by_baseline["optimal"].error
    assert error.startswith("ValueError: " + OPTIMAL_REASON), error
    assert "To suppress" not in error


def test_sweep_trainable_keeps_the_algorithm_name_and_only_softens_validation():
    from rllib_ext import PG, PGConfig

    trainable = runner.sweep_trainable(PG)
    assert trainable is runner.sweep_trainable(PG) and issubclass(trainable, PG)
    assert trainable.__name__ == "PG"
    good = PGConfig().environment("CartPole-v1").to_dict()
    assert (trainable.default_resource_request(good).required_resources
            == PG.default_resource_request(good).required_resources)
    bad = {**good, "baseline": "optimal", "normalize_advantages": True}
    with pytest.raises(ValueError):
        PG.default_resource_request(bad)
    assert trainable.default_resource_request(bad) is None  # Tune's default resources


def test_dry_run_validates_every_shipped_config_and_sweep(capsys):
    assert main(["check", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("ok", "INVALID"))]
    assert len(lines) == len(CONFIGS) + len(SWEEPS)
    assert all(line.startswith("ok ") for line in lines), out
    assert f"{len(lines)} file(s) checked: all valid" in out


def test_dry_run_reports_every_invalid_file_and_exits_2(tmp_path, capsys):
    (tmp_path / "bad_sweep.yaml").write_text(TINY_PG)
    (tmp_path / "bad_key.yaml").write_text(TINY_PG.replace("lr: 0.01,", "lrr: 0.01,"))
    (tmp_path / "good.yaml").write_text(TINY_PG.replace("normalize_advantages: true",
                                                        "normalize_advantages: false"))
    assert main(["check", "--dry-run", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "INVALID  " in out and "bad_key.yaml" in out and "'lrr'" in out
    assert f"bad_sweep.yaml: {2 + DRAWS} of " in out
    assert "ok       " in out and "good.yaml  [PG on CartPole-v1]; sweep: " in out
    assert "3 file(s) checked: 2 invalid" in out


def test_an_env_that_cannot_be_created_is_a_config_error(tmp_path):
    """E.g. MuJoCo missing: one line with gymnasium's reason, not a traceback from validate()."""
    def needs_a_package(**kwargs):
        raise gym.error.DependencyNotInstalled(
            'Foo is not installed, run `pip install "foo"`')

    gym.register("rllib_ext_test/NeedsFoo-v0", entry_point=needs_a_package)
    try:
        path = tmp_path / "exp.yaml"
        path.write_text(TINY_PG.replace("env: CartPole-v1", "env: rllib_ext_test/NeedsFoo-v0"))
        exp = load_experiment(path)
        with pytest.raises(ConfigError) as caught:
            exp.build_config()
    finally:
        gym.registry.pop("rllib_ext_test/NeedsFoo-v0")
    assert str(caught.value) == (f"{path}: env 'rllib_ext_test/NeedsFoo-v0' cannot be created "
                                 'here: Foo is not installed, run `pip install "foo"`')

