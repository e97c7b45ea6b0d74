"""The slow test tier: run each config's pass criterion over its seeds (``make learning``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rllib_ext.cli.experiment import Experiment
from rllib_ext.cli.schema import ENV_STEPS_KEY, FINAL_EVALUATION_METRIC


@dataclass
class CheckRow:
    config: str
    seed: int
    metric: str
    threshold: float
    within_env_steps: int
    reached_at: int | None  # first env-step count at which metric >= threshold
    best: float
    final: float
    env_steps: int
    error: str | None
    config_passed: bool = False

    @property
    def passed(self) -> bool:
        return self.error is None and self.reached_at is not None


def first_crossing(steps, values, threshold: float, within: int) -> int | None:
    """The first env-step count <= ``within`` at which ``values`` reaches ``threshold``."""
    for s, v in zip(steps, values, strict=True):
        if s <= within and not math.isnan(v) and v >= threshold:
            return int(s)
    return None


def last_value(values: list[float]) -> float:
    """The last non-NaN value (an evaluation metric is NaN in iterations that did not
    evaluate), NaN if there is none."""
    return next((v for v in reversed(values) if not math.isnan(v)), math.nan)


def check_experiment(exp: Experiment, *, storage: str | None = None) -> list[CheckRow]:
    """Runs one trial per seed until the threshold or the step budget; one row per seed."""
    from ray import tune

    from rllib_ext.cli import runner
    from rllib_ext.cli.progress import lookup
    from rllib_ext.core.plain_config import plain_config_dict

    crit = exp.criterion
    space = plain_config_dict(runner.quiet_config(exp.build_config()))
    space["seed"] = tune.grid_search(list(crit.seeds))
    # Scored by the final evaluation: every seed trains to the budget, then its chosen
    # checkpoint is evaluated; otherwise a seed stops at its first crossing.
    by_final_evaluation = crit.metric == FINAL_EVALUATION_METRIC

    def stop(_trial_id, result) -> bool:
        value = lookup(result, crit.metric)
        reached = isinstance(value, (int, float)) and value >= crit.threshold
        return (reached and not by_final_evaluation) or (
            lookup(result, ENV_STEPS_KEY, 0) >= crit.within_env_steps)

    _, outcomes = runner.run(
        exp,
        param_space=space,
        stop=stop,
        progress_stop={ENV_STEPS_KEY: crit.within_env_steps},
        storage=storage,
        name_prefix="check_",
        metric=exp.evaluation_metric if by_final_evaluation else crit.metric,
    )
    rows = []
    for o in outcomes:
        df = o.dataframe
        has = df is not None and ENV_STEPS_KEY in df and (
            by_final_evaluation or crit.metric in df)
        steps = df[ENV_STEPS_KEY].tolist() if has else []
        trained = int(steps[-1]) if steps else 0
        if by_final_evaluation:
            steps, values = final_evaluation_point(o, exp) if has and not o.error else ([], [])
        else:
            values = df[crit.metric].astype(float).tolist() if has else []
        rows.append(
            CheckRow(
                config=str(exp.path),
                seed=int(o.metrics.get("config", {}).get("seed", -1)),
                metric=crit.metric,
                threshold=crit.threshold,
                within_env_steps=crit.within_env_steps,
                reached_at=first_crossing(steps, values, crit.threshold, crit.within_env_steps),
                best=max((v for v in values if not math.isnan(v)), default=math.nan),
                final=last_value(values),
                env_steps=trained,
                error=o.error,
            )
        )
    passed = config_passes(rows, crit)
    for r in rows:
        r.config_passed = passed
    return sorted(rows, key=lambda r: r.seed)


def final_evaluation_point(outcome, exp: Experiment) -> tuple[list[int], list[float]]:
    """([env steps of the evaluated checkpoint], [its final-evaluation return]), or empty."""
    from rllib_ext.cli.checkpoints import describe_final_evaluation, final_evaluation

    record = final_evaluation(outcome.path, exp)
    if record is None:
        return [], []
    print(f"seed {outcome.metrics.get('config', {}).get('seed', '?')}: "
          f"{describe_final_evaluation(record)}", flush=True)
    return [record["env_steps"]], [record["episode_return_mean"]]


def config_passes(rows: list[CheckRow], crit) -> bool:
    """Enough seeds reached the threshold and, with ``min_mean``, the mean of the seeds' final
    values reaches it too."""
    passed = sum(r.passed for r in rows) >= crit.required
    if crit.min_mean is not None:
        finals = [r.final for r in rows]
        passed = passed and not any(math.isnan(v) for v in finals) and (
            sum(finals) / len(finals) >= crit.min_mean)
    return passed


def config_means(rows: list[CheckRow]) -> dict[str, float]:
    """Mean over seeds of each config's final value."""
    by_config: dict[str, list[float]] = {}
    for r in rows:
        by_config.setdefault(r.config, []).append(r.final)
    return {config: sum(v) / len(v) for config, v in by_config.items()}


def format_table(rows: list[CheckRow]) -> str:
    width = max([len("config"), *(len(r.config) for r in rows)])
    header = (f"{'config':<{width}} {'seed':>4} {'threshold':>9} {'reached at':>11} {'best':>8} "
              f"{'final':>8} {'env steps':>10}  result")
    lines = [header, "-" * len(header)]
    for r in rows:
        reached = f"{r.reached_at:,}" if r.reached_at is not None else "-"
        result = "error: " + r.error if r.error else ("pass" if r.passed else "FAIL")
        lines.append(
            f"{r.config:<{width}} {r.seed:>4} {r.threshold:>9g} {reached:>11} {r.best:>8.3f} "
            f"{r.final:>8.3f} {r.env_steps:>10,}  {result}"
        )
    for config, mean in config_means(rows).items():
        verdict = "config passes" if next(r for r in rows if r.config == config
                                          ).config_passed else "config fails"
        lines.append(f"{config}: mean final {mean:.3f}; {verdict}")
    return "\n".join(lines)
