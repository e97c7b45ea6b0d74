"""Rendering: RGB frames of the right shape that show the motion, and GIFs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rllib_ext.cli.evaluation import GifRecorder
from rllib_ext.envs import GoalEnv, PlatformEnv
from rllib_ext.envs.rendering import save_gif


@pytest.mark.parametrize("env_cls, action, shape", [
    (PlatformEnv, (0, ([30.0], [0.0], [0.0])), (300, 1035, 3)),
    (GoalEnv, (0, ([10.0, 0.0], [0.0], [0.0])), (600, 448, 3)),
])
def test_frames(env_cls, action, shape):
    env = env_cls(render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == shape and first.dtype == np.uint8
    _, _, _, _, info = env.step(action)
    frames = env.render_frames()
    assert len(frames) == info["frames"] + 1
    assert all(f.shape == shape for f in frames)
    np.testing.assert_array_equal(frames[0], first)  # starts where the last step ended
    assert not np.array_equal(frames[-1], first)     # and shows the motion


def test_render_without_mode_is_refused():
    env = PlatformEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        env.render_frames()
    with pytest.raises(ValueError, match="not supported"):
        PlatformEnv(render_mode="human")


def test_gif_recorder_writes_the_first_episode(tmp_path):
    path = tmp_path / "episode.gif"
    env = GifRecorder(PlatformEnv(render_mode="rgb_array"), path)
    env.reset(seed=0)
    frames = 1
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step((0, ([30.0], [0.0], [0.0])))
        frames += info["frames"]
    with Image.open(path) as gif:
        assert gif.size == (1035, 300)
        assert gif.n_frames == frames


def test_save_gif_rejects_no_frames(tmp_path):
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "x.gif")
