"""The pass-criterion table of `rllib-ext check`."""

from __future__ import annotations

from rllib_ext.cli.learning_check import CheckRow, config_passes, format_table, last_value
from rllib_ext.cli.schema import PassCriterion


def _row(config, seed, reached_at):
    return CheckRow(config=config, seed=seed, metric="m", threshold=950, within_env_steps=100,
                    reached_at=reached_at, best=960.0 if reached_at else 866.625, final=900.0,
                    env_steps=102_726, error=None)


def test_table_keeps_long_config_names_whole_and_aligned():
    long = "configs/pg/inverted_pendulum_with_a_long_name.yaml"
    lines = format_table([_row(long, 0, None), _row("configs/a.yaml", 1, 50)]).splitlines()
    assert lines[2].startswith(long + " ")
    assert lines[2].endswith("FAIL") and lines[3].endswith("pass")
    # Every column starts at the same offset in every row.
    assert len({len(line) - len(line.lstrip()) for line in lines}) == 1
    assert lines[2].index("866.625") == lines[0].index("best") + len("best") - len("866.625")
    assert "50" in lines[3] and "102,726" in lines[3]


def test_min_mean_is_a_second_bar_on_the_final_values():
    rows = [_row("c.yaml", seed, 50) for seed in range(4)] + [_row("c.yaml", 4, None)]
    for r, final in zip(rows, (0.99, 0.98, 0.97, 0.96, 0.40), strict=True):
        r.final = final
    crit = PassCriterion(metric="m", threshold=0.95, within_env_steps=100,
                         seeds=[0, 1, 2, 3, 4], min_passing=4)
    assert config_passes(rows, crit)  # 4/5 seeds reached 0.95
    crit.min_mean = 0.97
    assert not config_passes(rows, crit)  # mean 0.86 < 0.97
    crit.min_mean = 0.85
    assert config_passes(rows, crit)
    for r in rows:
        r.config_passed = True
    assert format_table(rows).splitlines()[-1] == "c.yaml: mean final 0.860; config passes"


def test_final_value_is_the_last_evaluated_one():
    nan = float("nan")
    assert last_value([nan, 0.4, nan, 0.7, nan]) == 0.7
    assert last_value([nan]) != last_value([nan])  # NaN when nothing was evaluated
