"""The progress line says where a run with an env-steps stop really ends: Tune stops after the
iteration that reaches the stop, so whole iterations overshoot it (issue 15: a 1,500-step stop
with 1,000-step iterations ran 2,000 steps while the line said "2,000/1,500")."""

from __future__ import annotations

import pytest

from rllib_ext.cli.progress import eta_seconds, format_line, projected_env_steps
from rllib_ext.cli.schema import ENV_STEPS_KEY

METRIC = "env_runners/episode_return_mean"


def _result(iteration: int, steps: int, seconds_per_iteration: float = 2.0) -> dict:
    return {"training_iteration": iteration, ENV_STEPS_KEY: steps,
            "time_total_s": iteration * seconds_per_iteration,
            "time_this_iter_s": seconds_per_iteration,
            "env_runners": {"num_env_steps_sampled": steps // iteration,
                            "episode_return_mean": 10.0}}


def test_the_line_states_the_stop_whole_iterations_really_reach():
    stop = {ENV_STEPS_KEY: 1500}
    first = format_line(_result(1, 1000), stop, METRIC)
    assert "env steps 1,000/1,500 (ends at ~2,000: whole iterations)" in first
    assert "ETA 0:00:02" in first  # to 2,000 steps: one more 2 s iteration, not 1 s
    last = format_line(_result(2, 2000), stop, METRIC)
    assert "env steps 2,000/1,500 (stop reached)" in last


def test_no_note_when_the_iterations_land_on_the_stop_or_there_is_none():
    assert "env steps 1,000/2,000 |" in format_line(_result(1, 1000), {ENV_STEPS_KEY: 2000},
                                                    METRIC)
    assert "env steps 2,000/2,000 (stop reached)" in format_line(
        _result(2, 2000), {ENV_STEPS_KEY: 2000}, METRIC)
    assert "env steps 1,000 |" in format_line(_result(1, 1000), {"training_iteration": 5},
                                              METRIC)


@pytest.mark.parametrize("iteration, steps, target, expected", [
    (1, 1000, 1500, 2000),     # one more iteration crosses 1,500
    (3, 3000, 10_000, 10_000),  # iterations land on the stop
    (3, 3100, 10_000, 10_333),  # uneven iterations (complete episodes): the mean pace
    (2, 2000, 1500, 2000),     # already past: where it stopped
    (0, 0, 1500, None),        # before the first iteration nothing is known
])
def test_projected_env_steps(iteration, steps, target, expected):
    result = {"training_iteration": iteration, ENV_STEPS_KEY: steps}
    assert projected_env_steps(result, target) == expected


def test_eta_of_other_stops_is_unchanged():
    assert eta_seconds(_result(2, 2000), {"training_iteration": 4}) == pytest.approx(4.0)


def test_a_trial_tune_completed_is_finished_even_without_done_in_its_last_result(tmp_path):
    """ASHA stopping a trial on its first result after a restore can leave ``done`` out of
    that result; the CLI takes "finished" from Tune's completion callback as well."""
    from types import SimpleNamespace

    from rllib_ext.cli.progress import COMPLETED_TRIALS, ProgressPrinter
    from rllib_ext.cli.runner import _outcomes

    def result(name, metrics):
        return SimpleNamespace(path=str(tmp_path / name), metrics=metrics,
                               metrics_dataframe=None, error=None, config={},
                               best_checkpoints=[], checkpoint=None)

    grid = [result("stopped_by_asha", {"training_iteration": 1}),
            result("interrupted", {"training_iteration": 2}),
            result("done_before_the_restore", {"training_iteration": 3, "done": True})]
    COMPLETED_TRIALS.clear()
    ProgressPrinter({}, "x").on_trial_complete(
        0, [], SimpleNamespace(trial_id="a", path=str(tmp_path / "stopped_by_asha"), config={}))
    try:
        assert [o.finished for o in _outcomes(grid)] == [True, False, True]
    finally:
        COMPLETED_TRIALS.clear()
