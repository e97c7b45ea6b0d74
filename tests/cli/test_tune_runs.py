"""Every ready sweep in ``tune_runs/*.yaml`` runs through ``rllib-ext tune`` at a tiny budget:
its own scheduler, search algorithm and checkpoint settings, 2 trials of one iteration of about
100 env steps (225 for H-PPO's Moving) with tiny networks (written to a copy of the file)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from rllib_ext.cli.config_file import load_experiment
from rllib_ext.cli.main import main

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "tune_runs").glob("*.yaml"))

#: Per algorithm: config sections merged into the sweep's for the tiny run.
TINY = {
    "PDQN": {"training": {"q_hiddens": [8], "param_hiddens": [8],
                          "train_batch_size_per_learner": 16,
                          "num_steps_sampled_before_learning_starts": 32}},
    "PADDPG": {"training": {"actor_hiddens": [8], "critic_hiddens": [8],
                            "train_batch_size_per_learner": 16,
                            "num_steps_sampled_before_learning_starts": 32}},
    # No CPU for the causal worker, so that both trials fit on the test session's 2 CPUs.
    "ACE": {"training": {"train_batch_size_per_learner": 16,
                         "num_steps_sampled_before_learning_starts": 32,
                         "causal_worker_num_cpus": 0},
            "rl_module": {"model_config": {"fcnet_hiddens": [8]}}},
    # A Moving episode lasts up to 201 steps: one env sampling 225 steps ends at least one, so
    # that every trial reports the sweep's metric (episode_return_mean) and a best trial exists.
    "HPPO": {"training": {"train_batch_size_per_learner": 225, "minibatch_size": 75,
                          "num_epochs": 1},
             "env_runners": {"num_envs_per_env_runner": 1},
             "rl_module": {"model_config": {"fcnet_hiddens": [8]}}},
    "PG": {"training": {"train_batch_size_per_learner": 100},
           "env_runners": {"num_envs_per_env_runner": 2},
           "rl_module": {"model_config": {"fcnet_hiddens": [8]}}},
}


def test_every_algorithm_has_a_sweep_with_a_scheduler():
    sweeps = {load_experiment(path).algorithm: path for path in SWEEPS}
    assert set(sweeps) == set(TINY), sweeps
    for path in SWEEPS:
        exp = load_experiment(path)
        assert exp.tune.get("scheduler"), f"{path} has no scheduler"
        assert exp.searched_keys(), f"{path} searches nothing"
        exp.build_config()


def _tiny_copy(path: Path, tmp_path: Path) -> tuple[Path, int]:
    """A copy of the sweep at a tiny budget and the --num-samples that makes 2 trials."""
    raw = yaml.safe_load(path.read_text())
    sections = raw.setdefault("config", {})
    for section, kwargs in TINY[raw["algorithm"]].items():
        sections.setdefault(section, {}).update(kwargs)
    sections.setdefault("reporting", {})["min_sample_timesteps_per_iteration"] = 100
    raw["stop"] = {"training_iteration": 1}
    space = raw["tune"].get("param_space") or {}
    grids = [key for key, spec in space.items() if "grid_search" in spec]
    for i, key in enumerate(grids):  # the first grid's first 2 values, one of the others'
        space[key]["grid_search"] = space[key]["grid_search"][: 2 if i == 0 else 1]
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy, 1 if grids else 2


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_runs_from_the_cli(ray_session, tmp_path, capsys, path):
    copy, num_samples = _tiny_copy(path, tmp_path)
    exp = load_experiment(copy)
    storage = tmp_path / "runs"
    code = main(["tune", str(copy), "--storage", str(storage),
                 "--num-samples", str(num_samples)])
    out = capsys.readouterr().out
    assert code == 0, out
    scheduler = exp.tune["scheduler"]
    kind = scheduler if isinstance(scheduler, str) else scheduler["type"]
    assert f"; scheduler {kind}, search " in out
    trial_lines = [line for line in out.splitlines()
                   if line.startswith(f"{exp.algorithm}_") and "  ok" in line]
    assert len(trial_lines) == 2, out
    assert len(list(itertools.islice(storage.rglob("progress.csv"), 3))) == 2
    best = next(line for line in out.splitlines() if line.startswith("best config: "))
    assert all(f"{key}=" in best for key in exp.searched_keys()), best
    checkpoint = next(line for line in out.splitlines() if line.startswith("best checkpoint: "))
    assert Path(checkpoint.split()[2], "rllib_checkpoint.json").is_file(), checkpoint
