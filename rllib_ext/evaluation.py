"""Greedy evaluation of a saved algorithm, outside of training."""

from __future__ import annotations

from pathlib import Path


def evaluate_checkpoint(path: str | Path, *, num_episodes: int = 10, explore: bool = False):
    """Restores the algorithm at ``path`` and runs ``num_episodes`` complete episodes.

    The episodes run on a fresh local env runner built from the checkpoint's own config and
    loaded with the checkpoint's env-runner state (module weights *and* connector state, e.g.
    observation filters), so it works whatever number of env runners trained the checkpoint.
    Returns (returns, lengths). Needs a running Ray (``ray.init()``).
    """
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    algo = Algorithm.from_checkpoint(str(Path(path).resolve()))
    try:
        config = algo.config.copy(copy_frozen=False)
        config.env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        env_runner = SingleAgentEnvRunner(config=config)
        env_runner.set_state(algo.env_runner.get_state())
    finally:
        algo.stop()
    try:
        episodes = env_runner.sample(num_episodes=num_episodes, explore=explore)
    finally:
        env_runner.stop()
    return [float(ep.get_return()) for ep in episodes], [len(ep) for ep in episodes]
