"""Greedy evaluation of a saved algorithm, outside of training, optionally recorded as a GIF."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

from rllib_ext.user_envs import register_env_of_config


class GifRecorder(gym.Wrapper):
    """Collects RGB frames of the first episode and writes them as a GIF when it ends.

    Uses the env's ``render_frames()`` (every simulated frame of a macro-step, as the Platform
    and Goal envs provide) when available, else one ``render()`` per step.
    """

    def __init__(self, env: gym.Env, path: str | Path):
        super().__init__(env)
        self.path = Path(path)
        self.frames: list = []
        self.done = False

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if not self.done:
            self.frames = [self.env.render()]
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not self.done:
            render_frames = getattr(self.env.unwrapped, "render_frames", None)
            # render_frames()[0] repeats the last frame of the previous step.
            self.frames.extend(render_frames()[1:] if render_frames else [self.env.render()])
            if terminated or truncated:
                from rllib_ext.envs.rendering import save_gif

                fps = self.env.metadata.get("render_fps") or 30
                save_gif(self.frames, self.path, fps=fps)
                self.done, self.frames = True, []
        return obs, reward, terminated, truncated, info


def evaluate_checkpoint(path: str | Path, *, num_episodes: int = 10, explore: bool = False,
                        gif: str | Path | None = None):
    """Restores the algorithm at ``path`` and runs ``num_episodes`` complete episodes.

    The episodes run on a fresh local env runner built from the checkpoint's own config and
    loaded with the checkpoint's env-runner state (module weights *and* connector state, e.g.
    observation filters), so it works whatever number of env runners trained the checkpoint.
    With ``gif``, the first episode is drawn (``render_mode="rgb_array"`` is passed through the
    env config) and saved there. Returns (returns, lengths). Needs a running Ray.
    """
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    register_env_of_config(checkpoint_env(path))  # an entry point: registered in this process
    algo = Algorithm.from_checkpoint(str(Path(path).resolve()))
    try:
        config = algo.config.copy(copy_frozen=False)
        config.env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        if gif is not None:
            config.environment(env=_recording_env(config, Path(gif).resolve()), env_config={
                **config.env_config, "render_mode": "rgb_array"})
        env_runner = SingleAgentEnvRunner(config=config)
        env_runner.set_state(algo.env_runner.get_state())
    finally:
        algo.stop()
    try:
        episodes = env_runner.sample(num_episodes=num_episodes, explore=explore)
    finally:
        env_runner.stop()
    return [float(ep.get_return()) for ep in episodes], [len(ep) for ep in episodes]


def _recording_env(config, gif: Path) -> str:
    """Registers (in this process) the config's env wrapped in a GifRecorder; returns its name."""
    from ray.tune.registry import register_env

    from rllib_ext.core.rllib_compat import env_creator

    creator = env_creator(config)
    name = f"rllib_ext_gif_recorder/{config.env}"
    register_env(name, lambda env_config: GifRecorder(creator(env_config), gif))
    return name


def checkpoint_env(path: str | Path):
    """The ``env`` of the config saved in the algorithm checkpoint at ``path`` (a string or a
    class), or None if it cannot be read (e.g. a class whose module does not import here)."""
    import pickle

    from ray.rllib.utils.checkpoints import Checkpointable

    try:
        with open(Path(path) / Checkpointable.CLASS_AND_CTOR_ARGS_FILE_NAME, "rb") as f:
            args = pickle.load(f)["ctor_args_and_kwargs"][0]
        state = args[0]
        return state.get("env") if isinstance(state, dict) else getattr(state, "env", None)
    except Exception:
        return None


def checkpoint_user_modules(path: str | Path) -> list[str]:
    """The user's env module of the checkpoint at ``path``, for the job's runtime_env
    (``py_modules``; see :func:`rllib_ext.user_envs.module_source`), with its entry point
    registered in this process. The working directory and, for a checkpoint of an
    ``rllib-ext`` run, the experiment file's folder are made importable first."""
    import json

    from rllib_ext.cli.runner import RUN_RECORD_FILE
    from rllib_ext.user_envs import (
        EnvNotFoundError,
        add_import_paths,
        module_source,
        resolve_env,
    )

    path = Path(path).resolve()
    add_import_paths(Path.cwd())
    for folder in path.parents:  # the run directory holds the CLI's run record
        try:
            record = json.loads((folder / RUN_RECORD_FILE).read_text())
        except (OSError, ValueError):
            continue
        if record.get("config"):
            add_import_paths(Path(record["config"]).resolve().parent)
        break
    env = checkpoint_env(path)
    if isinstance(env, type):
        module = env.__module__
    elif isinstance(env, str):
        try:
            module = resolve_env(env).module
        except EnvNotFoundError:
            return []
        register_env_of_config(env)
    else:
        return []
    source = module_source(module) if module else None
    return [source] if source else []
