"""Restores: the replay in checkpoints (``store_replay_in_checkpoint``) or refilled before
learning, ``Tuner.restore`` without ``param_space`` (trials not yet started, each iteration
logged once) and ``rllib-ext train|tune --resume``."""

from __future__ import annotations

import csv
import json
import os
import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ray import tune
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_ext.cli.main import main
from tests.helpers.interrupt import interrupt_at_iteration
from tests.helpers.tiny_configs import tiny_ace as _tiny_ace
from tests.helpers.tiny_configs import tiny_paddpg as _tiny_paddpg
from tests.helpers.tiny_configs import tiny_pdqn as _tiny_pdqn

#: name -> (tiny config, env steps a training_step samples).
ALGORITHMS = {
    "PDQN": (lambda: _tiny_pdqn().training(replay_capacity=100), 1),  # 128 steps: wraps
    "PADDPG": (_tiny_paddpg, 1),  # extra column: the action scores
    "ACE": (_tiny_ace, 10),  # prioritised
}


def _trained(name, tmp_path, store, iterations=2):
    """A checkpoint after ``iterations`` iterations (learning has started) and the replay's
    state and a few draws of its RNG right after saving."""
    algo = ALGORITHMS[name][0]().training(store_replay_in_checkpoint=store).build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        state = algo.replay.get_state()
        draws = algo.replay.sample_indices(16, beta=0.4)
    finally:
        algo.stop()
    return path, state, draws


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_replay_in_checkpoint_round_trip(ray_session, tmp_path, name):
    path, state, draws = _trained(name, tmp_path, store=True)
    assert state["size"] > 0 and ("priorities" in state) == (name == "ACE")
    restored = Algorithm.from_checkpoint(path)
    try:
        assert restored.config.store_replay_in_checkpoint
        got = restored.replay.get_state()
        assert (got["size"], got["next"]) == (state["size"], state["next"])
        assert set(got["columns"]) == set(state["columns"])
        for key, values in state["columns"].items():
            np.testing.assert_array_equal(got["columns"][key], values, err_msg=key)
        if name == "ACE":
            np.testing.assert_array_equal(got["priorities"], state["priorities"])
            assert got["max_priority"] == state["max_priority"]
            assert np.unique(got["priorities"]).size > 1  # learning updated them
        for a, b in zip(restored.replay.sample_indices(16, beta=0.4), draws, strict=True):
            np.testing.assert_array_equal(a, b)  # the sampling RNG goes on where it was
    finally:
        restored.stop()


def test_replay_is_not_in_checkpoints_by_default(ray_session, tmp_path):
    path, state, _ = _trained("PDQN", tmp_path, store=False)
    assert state["size"] > 0
    restored = Algorithm.from_checkpoint(path)
    try:
        assert len(restored.replay) == 0
    finally:
        restored.stop()


@pytest.mark.parametrize("name", ["PDQN", "ACE"])
@pytest.mark.parametrize("store", [False, True])
def test_restored_algorithm_learns_only_on_a_filled_replay(ray_session, tmp_path, name, store):
    """Learning starts on the replay's size, not the lifetime env steps: without the replay in
    the checkpoint, the restored algorithm refills it to
    ``num_steps_sampled_before_learning_starts`` first; with it, it learns on at once."""
    path, state, _ = _trained(name, tmp_path, store=store, iterations=3)
    restored = Algorithm.from_checkpoint(path)
    try:
        starts = restored.config.num_steps_sampled_before_learning_starts
        lifetime = restored.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))
        assert lifetime > starts and len(restored.replay) == (state["size"] if store else 0)
        sizes = []  # the replay's size at each learner call
        learn_on = restored.learn_on

        def spy(data, timesteps, **kwargs):
            sizes.append(len(restored.replay))
            return learn_on(data, timesteps, **kwargs)

        restored.learn_on = spy
        for _ in range(3):
            restored.train()
        per_step = ALGORITHMS[name][1]
        assert sizes, "no learning after the restore"
        if store:
            assert sizes[0] == min(state["size"] + per_step, restored.replay.capacity)
        else:
            assert min(sizes) >= starts
    finally:
        restored.stop()


# ------------------------------------------------------------------ Tune and the CLI

PDQN_FILE = textwrap.dedent(
    """
    algorithm: PDQN
    env: rllib_ext/Platform-v0
    env_config: {scale: true}
    config:
      training: {train_batch_size_per_learner: 16, num_steps_sampled_before_learning_starts: 32,
                 q_hiddens: [8], param_hiddens: [8], replay_capacity: 500}
      env_runners: {num_env_runners: 0}
      reporting: {min_sample_timesteps_per_iteration: 32, min_time_s_per_iteration: 0}
      evaluation: {evaluation_interval: 2, evaluation_duration: 2}
    stop: {training_iteration: 4}
    checkpoint_every: 2
    """
)

PG_FILE = textwrap.dedent(
    """
    algorithm: PG
    env: CartPole-v1
    config:
      training: {train_batch_size_per_learner: 64}
      env_runners: {num_env_runners: 0}
      rl_module: {model_config: {fcnet_hiddens: [4]}}
    stop: {training_iteration: 4}
    checkpoint_every: 2
    """
)


def _iterations(trial_dir: Path) -> tuple[list[int], list[int]]:
    """training_iteration of every line of result.json and every row of progress.csv."""
    with (trial_dir / "result.json").open() as f:
        logged = [json.loads(line)["training_iteration"] for line in f if line.strip()]
    with (trial_dir / "progress.csv").open() as f:
        rows = [int(row["training_iteration"]) for row in csv.DictReader(f)]
    return logged, rows


#: Whether an _InterruptAt callback may still interrupt (module state: Tune pickles the
#: callbacks with the run and restores them with it).
_ARMED = {"interrupt": False}


class _InterruptAt(tune.Callback):
    """Sends this process SIGINT (Ctrl-C: Tune stops the run gracefully) once, on the first
    result of training iteration ``at``, while armed."""

    def __init__(self, at: int):
        self.at = at

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _ARMED["interrupt"] and result["training_iteration"] == self.at:
            _ARMED["interrupt"] = False
            os.kill(os.getpid(), signal.SIGINT)


def test_tuner_restore_without_param_space(ray_session, tmp_path):
    """Two trials one at a time, Ctrl-C in the first one's 3rd iteration (checkpoint at 2):
    ``Tuner.restore(path, "PDQN")`` resumes it from iteration 2 (iteration 3 is logged once)
    and starts the second trial, whose config (callbacks included) comes from plain data."""
    from rllib_ext.cli.config_file import load_experiment
    from rllib_ext.cli.loggers import once_per_iteration_loggers
    from rllib_ext.cli.runner import checkpoint_config
    from rllib_ext.cli.schema import EVALUATION_SCORE_KEY

    (tmp_path / "exp.yaml").write_text(PDQN_FILE)
    exp = load_experiment(tmp_path / "exp.yaml")
    tuner = tune.Tuner(
        "PDQN", param_space=exp.param_space(exp.build_config()),
        tune_config=tune.TuneConfig(num_samples=2, max_concurrent_trials=1),
        run_config=tune.RunConfig(
            name="run", storage_path=str(tmp_path), stop=exp.stop, verbose=0,
            checkpoint_config=checkpoint_config(exp),
            callbacks=[_InterruptAt(3), *once_per_iteration_loggers()]))
    _ARMED["interrupt"] = True
    first = tuner.fit()
    assert len(first) == 1 and first[0].metrics["training_iteration"] == 3

    grid = tune.Tuner.restore(str(tmp_path / "run"), "PDQN", resume_unfinished=True).fit()
    assert len(grid) == 2
    for result in grid:
        assert result.error is None, result.error
        assert result.metrics["training_iteration"] == 4
        assert EVALUATION_SCORE_KEY in result.metrics  # the CLI's on_train_result callback
        assert _iterations(Path(result.path)) == ([1, 2, 3, 4], [1, 2, 3, 4])


def test_train_resume_continues_from_the_latest_checkpoint(ray_session, tmp_path, capsys,
                                                          monkeypatch):
    config = tmp_path / "exp.yaml"
    config.write_text(PG_FILE)
    storage = tmp_path / "runs"
    interrupt_at_iteration(monkeypatch, 3)
    assert main(["train", str(config), "--storage", str(storage), "--seed", "1"]) == 1
    (run_dir,) = storage.iterdir()
    err = capsys.readouterr().err
    assert "stopped at iteration 3 (" in err
    assert f"continue with: rllib-ext train --resume {run_dir}" in err
    (trial_dir,) = [p for p in run_dir.iterdir() if p.is_dir()]
    assert _iterations(trial_dir)[0] == [1, 2, 3]

    code = main(["train", "--resume", str(run_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "resuming the training of PG on CartPole-v1" in out
    # Restored from the checkpoint of iteration 2: iteration 3 is trained again, logged once.
    assert "iter    3 |" in out and "iter    2 |" not in out and "iter    4 |" in out
    assert "last checkpoint: " in out and "iteration 4," in out
    assert _iterations(trial_dir) == ([1, 2, 3, 4], [1, 2, 3, 4])

    # Nothing left to do: the finished run reports again.
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert _iterations(trial_dir)[0] == [1, 2, 3, 4]


def test_tune_resume_continues_every_trial(ray_session, tmp_path, capsys, monkeypatch):
    config = tmp_path / "exp.yaml"
    config.write_text(PG_FILE.replace("training_iteration: 4", "training_iteration: 3")
                      + "tune: {param_space: {lr: {grid_search: [0.001, 0.01]}}}\n")
    storage = tmp_path / "runs"
    interrupt_at_iteration(monkeypatch, 2)
    assert main(["tune", str(config), "--storage", str(storage)]) == 1
    (run_dir,) = storage.iterdir()
    captured = capsys.readouterr()
    assert "not finished" in captured.out
    assert f"continue with: rllib-ext tune --resume {run_dir}" in captured.err

    assert main(["tune", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    trial_lines = [line for line in out.splitlines() if line.startswith("PG_CartPole")]
    assert len(trial_lines) == 2 and all(" ok" in line for line in trial_lines), out
    trial_dirs = sorted(p for p in run_dir.iterdir() if p.is_dir())
    assert len(trial_dirs) == 2
    for trial_dir in trial_dirs:
        assert _iterations(trial_dir) == ([1, 2, 3], [1, 2, 3])


@pytest.mark.parametrize("args, message", [
    (["train", "--resume", "{run}", "{config}"], "drop"),
    (["train", "--resume", "{run}", "--seed", "3"], "--seed cannot change a resumed run"),
    (["tune", "--resume", "{run}", "--num-samples", "3"], "--num-samples cannot change"),
    (["train", "--resume", "{tmp}/nope"], "no such directory"),
    (["train", "--resume", "{tmp}"], "not a run of `rllib-ext train` or `tune`"),
    (["tune", "--resume", "{run}"], "is a `rllib-ext train` run; resume it with "
                                    "`rllib-ext train --resume"),
    (["train"], "give a config file"),
])
def test_resume_usage_errors_exit_2(tmp_path, capsys, args, message):
    run = tmp_path / "run"
    run.mkdir()
    (run / "rllib_ext_run.json").write_text(json.dumps({"command": "train"}))
    config = tmp_path / "exp.yaml"
    config.write_text(PG_FILE)
    argv = [a.format(run=run, config=config, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
