"""Image observations: the parameterised-action modules' encoders (the identity for vector
observations, so the networks and their initial weights are exactly those without an encoder;
RLlib's catalog CNN for images, ``model_config["conv_filters"]``), ACE on images (RLlib SAC's
multi-stream critics, the causal fit on actions and reward), and the pixel view of an env
(``env_config={"pixels": [H, W]}``)."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rllib_ext import ACEConfig, PADDPGConfig, PDQNConfig
from rllib_ext.core.spaces import module_spaces
from rllib_ext.envs.pixels import PixelObservations
from rllib_ext.envs.wrappers import make

PLATFORM = "rllib_ext/Platform-v0"
PIXELS = {"scale": True, "pixels": [16, 48]}
FILTERS = [[4, [4, 4], 4], [8, [2, 2], 2]]  # 16x48 -> 4x12 -> 2x6: 96 features

#: sha256 (first 16 hex digits) of the float64 state dicts of the default Platform modules built
#: after torch.manual_seed(123), recorded at commit da7811f, before the encoders existed. Equal
#: hashes = the same parameters, names and initial values (torch is pinned: 2.13).
WEIGHTS_BEFORE_ENCODERS = {
    "mpdqn": "96bdea853bf52070",
    "pdqn": "96bdea853bf52070",
    "spdqn": "eb8a67ce98990511",
    "paddpg": "84cc925988f6d92c",
}


def _build(config):
    obs, act = module_spaces(config)
    spec = config.get_default_rl_module_spec()
    spec.observation_space, spec.action_space, spec.model_config = obs, act, config.model_config
    return spec.build()


def _state_hash(module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().numpy().astype(np.float64).tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", list(WEIGHTS_BEFORE_ENCODERS))
def test_vector_observations_keep_the_networks_and_weights_of_before(name):
    config = (PADDPGConfig() if name == "paddpg" else PDQNConfig().training(variant=name))
    config.environment(PLATFORM, env_config={"scale": True})
    torch.manual_seed(123)
    module = _build(config)
    assert _state_hash(module) == WEIGHTS_BEFORE_ENCODERS[name]
    assert not any("encoder" in key for key in module.state_dict())


@pytest.mark.parametrize("config", [
    PDQNConfig().training(variant="mpdqn"), PDQNConfig().training(variant="spdqn"),
    PADDPGConfig()], ids=["mpdqn", "spdqn", "paddpg"])
def test_image_observations_get_rllibs_cnn_per_network(config):
    config.environment(PLATFORM, env_config=PIXELS).rl_module(
        model_config={"conv_filters": FILTERS})
    config.validate()
    module = _build(config)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    # Two conv layers per network; the targets are copies (P-DQN: param + Q nets and their
    # targets; PA-DDPG: actor, critic and their targets).
    assert [c.out_channels for c in convs[:2]] == [4, 8]
    assert len(convs) == 2 * 4
    images = torch.rand(3, 16, 48, 2)
    with torch.no_grad():
        k, params = module.greedy(images)
        # The replay stores flat rows: the same images, flattened, give the same actions.
        k_flat, params_flat = module.greedy(images.reshape(3, -1))
        actions = module.forward_inference({Columns.OBS: images})[Columns.ACTIONS]
    assert k.shape == (3,) and params.shape == (3, 3)
    torch.testing.assert_close(params_flat, params)
    assert torch.equal(k_flat, k) and torch.equal(actions[0], k)


@pytest.mark.parametrize("change, match", [
    (lambda c: c, r"could not build RLlib's CNN.*conv_filters=None.*conv_filters"),
    (lambda c: c.rl_module(model_config={"conv_filters": FILTERS}).training(
        initial_param_weights=[[0.0] * 4] * 3), r"initial_param_weights .*Drop"),
], ids=["no-filters-for-this-size", "initial-param-weights"])
def test_image_configs_that_cannot_work_are_refused_with_the_fix(change, match):
    config = PDQNConfig().environment(PLATFORM, env_config=PIXELS)
    with pytest.raises(ValueError, match=match):
        change(config).validate()


def test_integer_pixels_are_refused_with_the_fix():
    class BytePixels(gym.Env):
        def __init__(self, config=None):
            pass

        observation_space = gym.spaces.Box(0, 255, (16, 16, 1), np.uint8)
        action_space = gym.spaces.Tuple((gym.spaces.Discrete(2),
                                         gym.spaces.Box(-1, 1, (1,), np.float32),
                                         gym.spaces.Box(-1, 1, (1,), np.float32)))

    with pytest.raises(ValueError, match=r"needs float pixels; got dtype uint8"):
        PDQNConfig().environment(BytePixels).validate()


def test_pixel_view_shrinks_the_rendered_frame_and_stacks_two():
    env = make(PLATFORM, **PIXELS)
    assert env.observation_space == gym.spaces.Box(0, 1, (16, 48, 2), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (16, 48, 2)
    assert np.array_equal(obs[..., 0], obs[..., 1])  # the first frame, repeated
    assert 0.0 <= obs.min() and obs.max() <= 1.0 and obs.std() > 0.01
    moved = False
    for _ in range(5):
        previous = obs
        run = (0, np.array([1.0], np.float32), np.array([0.0], np.float32),
               np.array([0.0], np.float32))
        obs, _, done, _, _ = env.step(run)
        assert np.array_equal(obs[..., 0], previous[..., 1])  # the stack shifts by one
        moved |= not np.array_equal(obs[..., 1], obs[..., 0])
        if done:
            break
    assert moved  # the player's run shows between frames


def test_pixel_view_needs_a_rendering_env_and_a_sensible_size():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        PixelObservations(gym.make(PLATFORM), (16, 48))
    with pytest.raises(ValueError, match="at least 8"):
        PixelObservations(gym.make(PLATFORM, render_mode="rgb_array"), (4, 48))
    with pytest.raises(ValueError, match=r"pixels must be \[height, width\]"):
        make(PLATFORM, pixels=16)


def test_pdqn_trains_on_pixels(ray_session):
    config = (
        PDQNConfig()
        .environment(PLATFORM, env_config=PIXELS)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=8, num_steps_sampled_before_learning_starts=16,
                  replay_capacity=200, q_hiddens=[8], param_hiddens=[8])
        .rl_module(model_config={"conv_filters": FILTERS})
        .reporting(min_sample_timesteps_per_iteration=32, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        before = {k: v.clone() for k, v in algo.get_module().state_dict().items()
                  if "q_net.encoder" in k}
        result = algo.train()
        after = algo.get_module().state_dict()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 32
        # The CNN learns through the Q loss.
        assert any(not torch.equal(after[k], v) for k, v in before.items())
        assert algo.replay.sample(2)[Columns.OBS].shape == (2, 16 * 48 * 2)
    finally:
        algo.stop()


# -- ACE -----------------------------------------------------------------------------------------

REACH_PIXELS = {"influence": [1.0, 0.0], "max_steps": 20, "pixels": [16, 16]}
REACH_FILTERS = [[4, [4, 4], 4], [8, [2, 2], 2]]  # 16x16 -> 4x4 -> 2x2: 32 features


def _ace_pixels(**training):
    return (
        ACEConfig()
        .environment("rllib_ext/CausalReach-v0", env_config=REACH_PIXELS)
        .env_runners(num_env_runners=0, rollout_fragment_length=10)
        .training(**{"train_batch_size_per_learner": 16,
                     "num_steps_sampled_before_learning_starts": 32,
                     "random_warmup_steps": 30, "causal_sample_size": 40,
                     "causal_update_interval": 40, "causal_worker_num_cpus": 0,
                     "q_network": "multi_stream",
                     "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 500},
                     **training})
        .rl_module(model_config={"fcnet_hiddens": [8], "conv_filters": REACH_FILTERS,
                                 "fusionnet_hiddens": [8], "head_fcnet_hiddens": [8]})
        .reporting(min_sample_timesteps_per_iteration=20, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )


def test_causal_reach_renders_one_bar_per_joint():
    env = make("rllib_ext/CausalReach-v0", influence=[1.0, 0.0, 0.5], render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 48, 3) and frame.dtype == np.uint8
    blue = (frame == (40, 90, 200)).all(axis=-1)
    # Joints start in [-1, -0.5]: each bar runs from the middle row down, inside its column.
    for joint in range(3):
        rows = np.flatnonzero(blue[:, joint * 16:(joint + 1) * 16].any(axis=1))
        assert rows.min() == 32 and 47 <= rows.max() <= 63


@pytest.mark.parametrize("change, match", [
    ({"q_network": "concat"}, r"q_network='concat' .*q_network='multi_stream'"),
    ({"causal_sample_size": 3}, r"causal_sample_size=3 must exceed .*\(3 = obs \+ actions"),
], ids=["concat-critics", "causal-variables-without-pixels"])
def test_ace_image_configs_that_cannot_work_are_refused_with_the_fix(change, match):
    with pytest.raises(ValueError, match=match):
        _ace_pixels(**change).validate()


def test_ace_trains_on_pixels_with_a_causal_fit_on_actions_and_reward(ray_session):
    algo = _ace_pixels().build_algo()
    try:
        for _ in range(4):
            result = algo.train()
        module = algo.get_module()
        assert module.observation_space.shape == (16, 16, 2)
        assert any(isinstance(m, torch.nn.Conv2d) for m in module.pi_encoder.modules())
        # The FIFO holds actions and reward only (2 + 1 columns): no pixel variables.
        assert algo.causal.fifo.obs_dim == 0
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 80
    finally:
        algo.stop()
