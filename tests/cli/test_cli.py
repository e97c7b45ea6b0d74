"""The rllib-ext CLI: config errors (exit 2, one message), list, and a real train -> plot ->
evaluate round trip on the test session's Ray cluster (attached with --address)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rllib_ext.cli.config_file import load_experiment
from rllib_ext.cli.main import main
from tests.helpers.tiny_configs import GOOD_EXPERIMENT as GOOD


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("stop:", "stopp: {}\nstop:", "unknown top-level key 'stopp'. Did you mean 'stop'?"),
        ("algorithm: PG", "algorithm: PGG", "unknown algorithm 'PGG'. Did you mean 'PG'?"),
        ("env: CartPole-v1", "env: CartPol-v1", "unknown env 'CartPol-v1'. Did you mean"),
        ("lr: 0.01", "lrr: 0.01", "unknown key 'lrr' in config.training. Did you mean 'lr'?"),
        ("lr: 0.01", "lr: fast", "config.training.lr must be a number"),
        ("lr: 0.01", "baseline: median", "baseline='median' must be one of"),
        ("lr: 0.01", "lr: -0.01", "lr=-0.01 must be a finite number > 0"),
        ("fcnet_hiddens: [8]", "fcnet_hiddens: 8", "model_config['fcnet_hiddens']=8 must be"),
        ("num_env_runners: 0", "num_env_runners: -3", "num_env_runners=-3 must be an integer"),
        ("num_env_steps_sampled_lifetime: 400}", "timesteps_totl: 400}",
         "unknown stop key 'timesteps_totl': Tune would never reach it. Did you mean "
         "'timesteps_total'?"),
        ("env_runners:", "envrunners:", "unknown config section 'envrunners'"),
        ("num_envs_per_env_runner: 4", "num_envs_per_env_runner: [4]", "must be a number"),
        ("threshold: 50", "threshold: high", "pass.threshold is required and must be a number"),
        ("pass:", "final_evaluation: {checkpoint: worst}\npass:",
         "final_evaluation.checkpoint must be 'best' or 'last', got 'worst'"),
        ("pass:", "final_evaluation: {checkpoint: last, episodes: 0}\npass:",
         "final_evaluation.episodes must be an integer >= 1, got 0"),
        ("pass:", "final_evaluation: {episodes: 10}\npass:",
         "final_evaluation.checkpoint 'best' needs checkpoints scored during the run: set "
         "evaluation.evaluation_interval"),
        ("pass:", "final_evaluation: {checkpoint: last, episode: 10}\npass:",
         "unknown key 'episode' in 'final_evaluation'. Did you mean 'episodes'?"),
        ("threshold: 50", "metric: final_evaluation/episode_return_mean, threshold: 50",
         "pass.metric 'final_evaluation/episode_return_mean' needs a 'final_evaluation' section"),
    ],
)
def test_bad_config_exits_2_with_message(tmp_path, capsys, old, new, message):
    path = _write(tmp_path, GOOD.replace(old, new))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


RACE = Path(__file__).resolve().parents[2] / "configs" / "pdqn" / "platform_race.yaml"


@pytest.mark.parametrize("mapping, message", [
    ("rllib_ext.envs.platform_race:no_such_fn",
     "config.multi_agent.policy_mapping_fn='rllib_ext.envs.platform_race:no_such_fn' cannot "
     "be imported"),
    ("policy_per_player", "must name a function as 'module:function'"),
])
def test_bad_multi_agent_section_exits_2_with_message(tmp_path, capsys, mapping, message):
    text = RACE.read_text().replace(
        "rllib_ext.envs.platform_race:policy_per_player", mapping)
    assert main(["train", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_multi_agent_section_builds_rllibs_multi_agent_config():
    from rllib_ext.envs.platform_race import policy_per_player

    config = load_experiment(RACE).build_config(seed=0)
    assert config.is_multi_agent and set(config.policies) == {"player_0", "player_1"}
    assert config.policy_mapping_fn is policy_per_player


def test_missing_config_file_exits_2(capsys):
    assert main(["train", "configs/nope.yaml"]) == 2
    assert "not found" in capsys.readouterr().err


def test_good_config_parses(tmp_path):
    exp = load_experiment(_write(tmp_path, GOOD))
    config = exp.build_config(seed=3)
    assert (config.lr, config.seed, config.env) == (0.01, 3, "CartPole-v1")
    assert exp.criterion.threshold == 50 and exp.criterion.required == 3


SAC_FILE = textwrap.dedent(
    """
    algorithm: SAC
    env: Pendulum-v1
    config:
      env_runners: {num_env_runners: 0}
    stop: {num_env_steps_sampled_lifetime: 400}
    pass: {threshold: -250, within_env_steps: 20000}
    """
)


def test_builtin_algorithms_get_the_torch_thread_cap(tmp_path):
    """RLlib's own algorithms get the thread cap as an on_algorithm_init callback (kept through
    Tune's param_space dict, after a callback the file names); rllib_ext's apply it in setup()."""
    from ray.rllib.algorithms.sac import SACConfig

    from rllib_ext.core.threads import limit_torch_threads_on_init

    exp = load_experiment(_write(tmp_path, SAC_FILE))
    config = exp.build_config()
    assert config.callbacks_on_algorithm_init == [limit_torch_threads_on_init]
    restored = SACConfig().update_from_dict(exp.param_space(config))
    assert restored.callbacks_on_algorithm_init == [limit_torch_threads_on_init]

    own = exp.build_config(overrides={"callbacks": {"on_algorithm_init": "builtins:print"}})
    assert own.callbacks_on_algorithm_init == [print, limit_torch_threads_on_init]

    ours = load_experiment(_write(tmp_path, GOOD)).build_config()  # PG caps in setup()
    assert ours.callbacks_on_algorithm_init is None


def _needs_a_missing_extra(env_id: str) -> bool:
    """True for an env whose optional dependency (e.g. MuJoCo, `pip install -e '.[mujoco]'`)
    is not installed here; such configs cannot build their algorithm config."""
    import gymnasium as gym

    try:
        gym.make(env_id).close()
    except gym.error.DependencyNotInstalled:
        return True
    except Exception:
        return False
    return False


def test_repository_configs_are_valid():
    from rllib_ext.cli.config_file import list_config_files

    paths = list_config_files(Path(__file__).resolve().parents[2] / "configs")
    assert paths, "no configs found"
    built = 0
    for path in paths:
        exp = load_experiment(path)
        assert exp.criterion is not None, f"{path} has no pass criterion"
        if isinstance(exp.env, str) and _needs_a_missing_extra(exp.env):
            continue  # validate() probes the env's spaces, which needs the extra
        exp.build_config()
        built += 1
    assert built >= 5, f"only {built} of {len(paths)} configs could be built"


def test_list_shows_algorithms_and_configs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "PG" in out and "configs/pg/cartpole.yaml" in out and "150" in out


def test_train_plot_evaluate_on_an_existing_cluster(ray_session, tmp_path, capsys,
                                                     monkeypatch):
    # Checkpoints on evaluation iterations, the best by the evaluation return and the last
    # one kept.
    # Every 2nd iteration evaluates, so the first result has no evaluation keys (Tune then
    # leaves them out of progress.csv; they are in result.json).
    text = GOOD.replace(
        "stop: {num_env_steps_sampled_lifetime: 400}",
        "  evaluation: {evaluation_interval: 2, evaluation_duration: 2}\n"
        "stop: {num_env_steps_sampled_lifetime: 800}")
    config = _write(tmp_path, text)
    storage = tmp_path / "runs"
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_ext.cli.main", "train", str(config),
         "--address", address, "--storage", str(storage), "--seed", "0"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"the Ray cluster at {address}" in out
    assert "iter    1 | env steps" in out and "ETA" in out
    # RLlib's known-harmless warnings are silenced; every result has the score Tune ranks
    # checkpoints by (no "Result dict has no key" error).
    assert "new API stack" not in out + proc.stderr
    assert "Result dict has no key" not in out + proc.stderr

    (exp_dir,) = storage.iterdir()
    assert list(exp_dir.rglob("events.out.tfevents.*")), "no TensorBoard events written"
    kept = sorted(p.parent for p in exp_dir.rglob("rllib_checkpoint.json"))
    assert 1 <= len(kept) <= 2  # the best and the last (one if they coincide)
    best_line = next(ln for ln in out.splitlines() if ln.startswith("best checkpoint: "))
    last_line = next(ln for ln in out.splitlines() if ln.startswith("last checkpoint: "))
    assert "evaluation/env_runners/episode_return_mean" in best_line
    last_iteration = max(int(m) for m in re.findall(r"^iter +(\d+) \|", out, re.MULTILINE))
    # The last evaluation is reported even when the last iteration did not evaluate.
    assert re.search(r"^greedy evaluation \(last, at [\d,]+ env steps\): "
                     r"episode_return_mean [\d.]+ over 2 episodes$", out, re.MULTILINE)
    assert f"iteration {last_iteration}," in last_line
    best_path = best_line.removeprefix("best checkpoint: ").split(" (")[0]
    assert Path(best_path) in kept

    from rllib_ext.cli.plot import evaluated_rows, find_progress_files, read_progress

    # The evaluation iterations are told apart from those where RLlib repeats the last
    # evaluation's results.
    (results,) = find_progress_files(exp_dir)
    cols = read_progress(results)
    evaluated = [int(i) for i, e in zip(cols["training_iteration"], evaluated_rows(cols),
                                        strict=True) if e]
    assert evaluated == list(range(2, last_iteration + 1, 2))
    assert main(["plot", str(exp_dir)]) == 0
    png = exp_dir / "returns.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert (exp_dir / "learner_metrics.png").stat().st_size > 5000
    assert not (exp_dir / "causal_weights.png").exists()  # PG reports no causal weights

    capsys.readouterr()
    assert main(["evaluate", str(exp_dir), "--episodes", "2"]) == 0  # the run: its best
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"checkpoint: {best_path} (")
    assert lines[1] == f"rllib-ext: evaluating {best_path} on the already running Ray session"
    assert lines[2].startswith("episode   0: return") and "over 2 greedy episodes" in lines[-1]
    assert main(["evaluate", str(exp_dir), "--pick", "last", "--episodes", "1"]) == 0
    assert f"iteration {last_iteration}," in capsys.readouterr().out.splitlines()[0]
    assert main(["evaluate", best_path, "--episodes", "1"]) == 0  # a checkpoint directly
    assert "over 1 greedy episodes" in capsys.readouterr().out
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    explores, sample = [], SingleAgentEnvRunner.sample
    monkeypatch.setattr(SingleAgentEnvRunner, "sample", lambda self, **kw: (
        explores.append(kw.get("explore")), sample(self, **kw))[1])
    assert main(["evaluate", best_path, "--episodes", "3", "--explore"]) == 0
    assert "over 3 exploring episodes" in capsys.readouterr().out and explores == [True]


def test_tune_command_runs_the_search_space(ray_session, tmp_path, capsys):
    text = GOOD + "tune: {param_space: {lr: {grid_search: [0.001, 0.01]}}}\n"
    storage = tmp_path / "runs"
    code = main(["tune", str(_write(tmp_path, text)), "--storage", str(storage),
                 "--stop-timesteps", "200"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(1 sample(s))" in out  # one sample of a 2-point grid = 2 trials
    trial_lines = [line for line in out.splitlines() if line.startswith("PG_CartPole")]
    assert len(trial_lines) == 2 and all(" ok" in line for line in trial_lines)
    assert any(line.endswith("<- best") for line in trial_lines)
    (exp_dir,) = storage.iterdir()
    assert len(list(exp_dir.rglob("progress.csv"))) == 2


def test_plot_draws_ace_causal_weights_per_trial(tmp_path):
    from rllib_ext.cli.plot import _causal_weight_keys, plot_run

    header = ["num_env_steps_sampled_lifetime", "env_runners/episode_return_mean"]
    header += [f"ace/causal_weight_{i}" for i in (10, 0, 2, 1)] + ["ace/causal_weight_x"]
    for trial in ("trial_a", "trial_b"):
        (tmp_path / trial).mkdir()
        rows = [",".join(header)]
        rows += [",".join(str(v) for v in (1000 * k, -k, 1, 1 + k, 1 - k / 10, 1, "")) for k
                 in range(5)]
        (tmp_path / trial / "progress.csv").write_text("\n".join(rows) + "\n")

    written = plot_run(tmp_path)
    assert [p.name for p in written] == ["returns.png", "causal_weights.png"]
    assert (tmp_path / "causal_weights.png").stat().st_size > 5000
    cols = {k: [1.0] for k in header}
    assert _causal_weight_keys(cols) == [f"ace/causal_weight_{i}" for i in (0, 1, 2, 10)]


def test_plot_marks_the_evaluation_iterations(tmp_path):
    from rllib_ext.cli.plot import evaluation_points, plot_run, read_progress

    # RLlib repeats an evaluation's results in the next iteration (here 3 and 5); only the
    # iterations that evaluated report the evaluation workers' health.
    rows = ["num_env_steps_sampled_lifetime,env_runners/episode_return_mean,"
            "evaluation/env_runners/episode_return_mean,evaluation/num_healthy_workers"]
    rows += ["1000,0.1,,"]
    rows += [f"{1000 * k},{0.1 * k},{0.2 * (k // 2 * 2)},{'' if k % 2 else 0}"
             for k in range(2, 6)]
    (tmp_path / "progress.csv").write_text("\n".join(rows) + "\n")
    assert evaluation_points(read_progress(tmp_path / "progress.csv")) == [
        (2000.0, 0.4), (4000.0, 0.8)]
    from rllib_ext.cli.checkpoints import last_evaluation

    steps, value, episodes = last_evaluation(tmp_path, "evaluation/env_runners/episode_return_mean")
    assert (steps, value) == (4000, pytest.approx(0.8)) and math.isnan(episodes)
    assert [p.name for p in plot_run(tmp_path)] == ["returns.png"]


def test_evaluation_score_is_set_only_in_iterations_that_evaluated():
    from rllib_ext.cli.result_callbacks import record_evaluation_score
    from rllib_ext.cli.schema import EVALUATION_SCORE_KEY

    metric = "evaluation/env_runners/episode_return_mean"
    evaluated = {"evaluation": {"num_healthy_workers": 0,
                                "env_runners": {"episode_return_mean": 0.7}}}
    repeated = {"evaluation": {"env_runners": {"episode_return_mean": 0.7}}}
    record_evaluation_score(result=evaluated, metric=metric)
    record_evaluation_score(result=repeated, metric=metric)
    assert evaluated[EVALUATION_SCORE_KEY] == 0.7
    assert math.isnan(repeated[EVALUATION_SCORE_KEY])


def test_checkpoint_config_keeps_the_best_and_the_last(tmp_path):
    """Tune's own checkpoint bookkeeping, fed results like RLlib's with the CLI's score:
    the best evaluated checkpoint survives next to the last, not the two newest."""
    from ray.train import Checkpoint
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult

    from rllib_ext.cli.runner import checkpoint_config
    from rllib_ext.cli.schema import EVALUATION_SCORE_KEY

    exp = load_experiment(_write(tmp_path, GOOD.replace(
        "stop:", "  evaluation: {evaluation_interval: 1}\nstop:")))
    assert exp.build_config().callbacks_on_train_result  # the score is recorded
    manager = _CheckpointManager(checkpoint_config(exp))
    for i, score in enumerate([0.5, 0.9, 0.3, 0.4, math.nan]):
        path = tmp_path / f"checkpoint_{i}"
        path.mkdir()
        manager.register_checkpoint(_TrainingResult(
            checkpoint=Checkpoint(str(path)),
            metrics={"evaluation": {"env_runners": {"episode_return_mean": score}},
                     EVALUATION_SCORE_KEY: score}))
    kept = sorted(p.name for p in tmp_path.glob("checkpoint_*"))
    assert kept == ["checkpoint_1", "checkpoint_4"]


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    """Two seeds launched together once shared one run directory (named by the second), and
    with it Tune's experiment state and the run record that --resume reads."""
    from rllib_ext.cli import runner

    monkeypatch.setattr(runner.time, "strftime", lambda fmt: "20261208-024028")
    names = [runner.claim_run_dir(tmp_path / "runs", "hppo_moving") for _ in range(3)]
    assert names == ["hppo_moving_20261208-024028", "hppo_moving_20261208-024028-2",
                     "hppo_moving_20261208-024028-3"]
    assert all((tmp_path / "runs" / n).is_dir() for n in names)


def test_plot_and_evaluate_reject_bad_paths(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no result.json or progress.csv" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "nor a run directory with checkpoints" in capsys.readouterr().err


class RenderableBandit(gym.Env):
    """One-step episodes with an 8x8 frame that shows the action taken."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, config=None):
        self.render_mode = (config or {}).get("render_mode")
        self.last = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.last = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.last = int(action) + 1
        return np.zeros(1, np.float32), float(action), True, False, {}

    def render(self):
        return np.full((8, 8, 3), 100 * self.last, np.uint8)


def _bandit_experiment(*, evaluation_episodes: int, rest: str) -> str:
    """A PG experiment on RenderableBandit (16 env steps per iteration) with a greedy
    evaluation of ``evaluation_episodes`` every iteration; ``rest``: its other top-level keys."""
    return textwrap.dedent(f"""
        algorithm: PG
        env: tests.cli.test_cli.RenderableBandit
        config:
          training: {{train_batch_size_per_learner: 16}}
          env_runners: {{num_env_runners: 0}}
          rl_module: {{model_config: {{fcnet_hiddens: [4]}}}}
          evaluation: {{evaluation_interval: 1, evaluation_duration: {evaluation_episodes},
                       evaluation_duration_unit: episodes}}
        """) + textwrap.dedent(rest)


def test_evaluate_writes_a_gif(ray_session, tmp_path, capsys):
    from PIL import Image

    from rllib_ext import PGConfig

    config = (
        PGConfig()
        .environment(RenderableBandit)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=16)
        .rl_module(model_config={"fcnet_hiddens": [4]})
    )
    algo = config.build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    gif = tmp_path / "episode.gif"
    assert main(["evaluate", checkpoint, "--episodes", "2", "--gif", str(gif)]) == 0
    assert f"gif: {gif}" in capsys.readouterr().out
    with Image.open(gif) as image:
        assert image.size == (8, 8) and image.n_frames == 2  # reset frame + one step


def test_train_ends_with_the_greedy_evaluation_and_a_gif(ray_session, tmp_path, capsys):
    from PIL import Image

    text = _bandit_experiment(evaluation_episodes=5, rest="stop: {training_iteration: 1}")
    gif = tmp_path / "episode.gif"
    code = main(["train", str(_write(tmp_path, text)), "--storage", str(tmp_path / "runs"),
                 "--gif", str(gif)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "greedy evaluation (last, at " in out and "env steps): episode_return_mean" in out
    assert "over 5 episodes" in out
    assert f"gif:         {gif} (one greedy episode of the best checkpoint: return" in out
    with Image.open(gif) as image:
        assert image.n_frames == 2
    assert main(["train", str(_write(tmp_path, text)), "--gif", "out.png"]) == 2


def test_train_ends_with_the_final_evaluation_of_the_best_checkpoint(ray_session, tmp_path,
                                                                     capsys):
    import json

    from rllib_ext.cli.checkpoints import pick, run_checkpoints
    from rllib_ext.cli.schema import EVALUATION_METRIC, FINAL_EVALUATION_FILE

    text = _bandit_experiment(evaluation_episodes=3, rest="""
        stop: {training_iteration: 3}
        final_evaluation: {checkpoint: best, episodes: 7}
        """)
    code = main(["train", str(_write(tmp_path, text)), "--storage", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    [record_file] = (tmp_path / "runs").rglob(FINAL_EVALUATION_FILE)
    record = json.loads(record_file.read_text())
    best = pick(run_checkpoints(record_file.parent, EVALUATION_METRIC), "best")
    # The checkpoint Tune kept as the best, evaluated over exactly 7 more greedy episodes;
    # the bandit's greedy return is 0 or 1 per episode, so the mean is a multiple of 1/7.
    assert record["which"] == "best" and record["checkpoint"] == best.path
    assert record["iteration"] == best.iteration and record["episodes"] == 7
    assert round(record["episode_return_mean"] * 7, 6) in {float(i) for i in range(8)}
    assert (f"final evaluation: episode_return_mean {record['episode_return_mean']:.3f} over 7 "
            f"greedy episodes (best checkpoint, iteration {best.iteration}, ") in out


def test_check_scores_each_seed_by_its_final_evaluation(ray_session, tmp_path, capsys):
    import json

    from rllib_ext.cli.learning_check import check_experiment
    from rllib_ext.cli.schema import FINAL_EVALUATION_FILE

    text = _bandit_experiment(evaluation_episodes=3, rest="""
        stop: {training_iteration: 10}
        final_evaluation: {checkpoint: best, episodes: 6}
        pass: {metric: final_evaluation/episode_return_mean, threshold: 0.0,
               within_env_steps: 48, seeds: [0], min_passing: 1}
        """)
    [row] = check_experiment(load_experiment(_write(tmp_path, text)),
                             storage=str(tmp_path / "runs"))
    [record_file] = (tmp_path / "runs").rglob(FINAL_EVALUATION_FILE)
    record = json.loads(record_file.read_text())
    # Threshold 0 is met by the first evaluation, yet the seed trains to the whole budget
    # (3 iterations of 16 env steps) before its best checkpoint is evaluated and scored.
    assert row.error is None and row.env_steps >= 48
    assert record["episodes"] == 6 and record["which"] == "best"
    assert row.final == row.best == record["episode_return_mean"]
    assert row.reached_at == record["env_steps"] and row.passed and row.config_passed
    assert "seed 0: final evaluation: episode_return_mean" in capsys.readouterr().out
