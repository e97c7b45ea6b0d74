"""Domain metrics reported alongside the return."""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback

#: Fraction of episodes that ended with a goal (Goal domain), under ``env_runners/``.
GOAL_SCORED_KEY = "goal_scored"


class GoalMetricsCallback(RLlibCallback):
    """Logs ``goal_scored`` (1 if the episode ended with a goal, else 0) per Goal episode, so
    P(goal) - the figure the MP-DQN paper reports - appears in the results as
    ``env_runners/goal_scored`` (and ``evaluation/env_runners/goal_scored``). It reads the env's
    ``info["goal"]``, so it does not depend on reward scaling."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        info = episode.get_infos(-1) if len(episode) else {}
        if metrics_logger is not None:
            metrics_logger.log_value(GOAL_SCORED_KEY, float(bool(info.get("goal", False))))
