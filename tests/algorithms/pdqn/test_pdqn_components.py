"""P-DQN pieces without Ray: action layouts, multi-pass Q, replay, loss options, targets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_ext import PDQNConfig
from rllib_ext.algorithms.pdqn.action_layout import (
    FLAT_BOX,
    FLAT_TUPLE,
    NESTED,
    layout_from_space,
)
from rllib_ext.algorithms.pdqn.pdqn_learner import (
    ACTION_INDEX,
    ACTION_PARAMS,
    linear_epsilon,
)
from rllib_ext.algorithms.pdqn.replay import TransitionReplay
from rllib_ext.algorithms.pdqn.torch.default_pdqn_torch_rl_module import QNet
from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import weighted_q

BOX1 = spaces.Box(-1, 1, (1,))
BOX2 = spaces.Box(-1, 1, (2,))


def test_layouts_of_the_accepted_forms():
    nested = layout_from_space(spaces.Tuple((spaces.Discrete(2), spaces.Tuple((BOX2, BOX1)))))
    assert (nested.form, nested.param_dims, nested.offsets) == (NESTED, (2, 1), (0, 2, 3))
    flat = layout_from_space(spaces.Tuple((spaces.Discrete(2), BOX2, BOX1)))
    assert (flat.form, flat.param_dims) == (FLAT_TUPLE, (2, 1))
    box = layout_from_space(spaces.Tuple((spaces.Discrete(3), BOX2)), param_layout=[1, 0, 1])
    assert (box.form, box.param_dims, box.offsets) == (FLAT_BOX, (1, 0, 1), (0, 1, 1, 2))
    torch.testing.assert_close(box.owner_mask(), torch.tensor([[1.0, 0], [0, 0], [0, 1.0]]))
    k, params = torch.tensor([2]), torch.tensor([[0.1, 0.2, 0.3]])
    env_action = nested.to_env(k, params)
    assert env_action[0] is k
    torch.testing.assert_close(env_action[1][0], torch.tensor([[0.1, 0.2]]))
    torch.testing.assert_close(env_action[1][1], torch.tensor([[0.3]]))


@pytest.mark.parametrize("space, layout, match", [
    (spaces.Discrete(3), None, "Tuple whose first element is Discrete"),
    (spaces.Tuple((BOX1, spaces.Discrete(2))), None, "first element must be Discrete"),
    (spaces.Tuple((spaces.Discrete(3), BOX2)), None, "ambiguous; set training\\(param_layout"),
    (spaces.Tuple((spaces.Discrete(3), BOX1, BOX1)), None, "3 discrete actions but 2"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (2, 2)), BOX1)), None, "1-D Box"),
    (spaces.Tuple((spaces.Discrete(3), BOX2)), [1, 1, 1], "summing to 2"),
    (spaces.Tuple((spaces.Discrete(2), BOX1, BOX1)), [1, 1], "only for a flat"),
])
def test_rejected_forms_name_the_space_and_the_fix(space, layout, match):
    with pytest.raises(ValueError, match=match) as info:
        layout_from_space(space, layout)
    assert str(space) in str(info.value) or "param_layout" in str(info.value)


def test_multipass_equals_k_single_action_passes():
    torch.manual_seed(0)
    layout = layout_from_space(spaces.Tuple((spaces.Discrete(3), BOX2, BOX1, BOX1)))
    q = QNet("mpdqn", 5, layout, [16], "relu", None)
    obs, params = torch.randn(7, 5), torch.randn(7, 4)
    out = q(obs, params)
    for a in range(3):
        only_a = params * layout.owner_mask()[a]  # other actions' slots zeroed
        torch.testing.assert_close(out[:, a], q.net(torch.cat([obs, only_a], -1))[:, a])


def test_split_q_feeds_each_action_only_its_parameters():
    torch.manual_seed(0)
    layout = layout_from_space(spaces.Tuple((spaces.Discrete(2), BOX2, BOX1)))
    q = QNet("spdqn", 3, layout, [8], "relu", None)
    obs, params = torch.randn(4, 3), torch.randn(4, 3)
    out = q(obs, params)
    torch.testing.assert_close(out[:, 0], q.nets[0](torch.cat([obs, params[:, :2]], -1))[:, 0])
    torch.testing.assert_close(out[:, 1], q.nets[1](torch.cat([obs, params[:, 2:]], -1))[:, 0])


def test_linear_epsilon_schedule():
    assert linear_epsilon(0, initial=1.0, final=0.01, duration=1000) == 1.0
    assert linear_epsilon(500, initial=1.0, final=0.01, duration=1000) == pytest.approx(0.505)
    assert linear_epsilon(5000, initial=1.0, final=0.01, duration=1000) == 0.01


def test_replay_stores_all_parameters_and_terminal_only_at_the_end():
    space = spaces.Tuple((spaces.Discrete(3), BOX1, BOX2, BOX1))
    layout = layout_from_space(space)
    actions = [(k, np.float32([k]), np.float32([k, -k]), np.float32([9])) for k in (0, 2)]
    ep = SingleAgentEpisode(
        observations=[np.full(2, i, np.float32) for i in range(3)], actions=actions,
        rewards=[1.0, 2.0], terminated=True, len_lookback_buffer=0,
        observation_space=spaces.Box(-9, 9, (2,)), action_space=space,
    ).to_numpy()
    replay = TransitionReplay(10, 2, 4, seed=0)
    assert replay.add_episodes([ep], layout) == 2
    cols = replay.columns
    np.testing.assert_array_equal(cols[ACTION_PARAMS][:2], [[0, 0, 0, 9], [2, 2, -2, 9]])
    np.testing.assert_array_equal(cols[ACTION_INDEX][:2], [0, 2])
    np.testing.assert_array_equal(cols[Columns.OBS][:2, 0], [0, 1])
    np.testing.assert_array_equal(cols[Columns.NEXT_OBS][:2, 0], [1, 2])
    np.testing.assert_array_equal(cols[Columns.TERMINATEDS][:2], [0, 1])
    batch = replay.sample(64)
    assert batch[ACTION_PARAMS].shape == (64, 4) and set(batch[ACTION_INDEX]) <= {0, 2}


def test_replay_ring_wraps():
    replay = TransitionReplay(3, 1, 1, seed=0)
    for i in range(5):
        replay.add(**{Columns.OBS: [[i]], Columns.NEXT_OBS: [[i]], ACTION_INDEX: [i],
                      ACTION_PARAMS: [[i]], Columns.REWARDS: [i], Columns.TERMINATEDS: [0]})
    assert len(replay) == 3
    assert sorted(replay.columns[Columns.REWARDS]) == [2, 3, 4]


class _Cfg:
    def __init__(self, weighting="sum", indexed=False):
        self.param_loss_weighting, self.indexed = weighting, indexed


@pytest.mark.parametrize("weighting, indexed, expected", [
    ("sum", False, [[1, 2, 3], [4, 5, 6]]),
    ("weighted", False, [[1, 0, 0], [4, 0, 0]]),            # both samples took action 0
    ("average", False, [[1 / 3, 2 / 3, 1], [4 / 3, 5 / 3, 2]]),
    ("sum", True, [[1, 0, 0], [4, 0, 0]]),                 # only Q(s, a_b)
])
def test_param_loss_weightings(weighting, indexed, expected):
    q_all = torch.tensor([[1.0, 2, 3], [4, 5, 6]])
    out = weighted_q(q_all, torch.tensor([0, 0]), _Cfg(weighting, indexed))
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32))


def test_random_weighting_is_unit_norm():
    q_all = torch.ones(2, 4)
    w = weighted_q(q_all, torch.tensor([0, 1]), _Cfg("random_weighted"))[0]
    assert w.norm().item() == pytest.approx(1.0)


class ToyHybridEnv(gym.Env):
    """Tuple(Discrete(3), Box(2)) with actions 0 and 2 owning one parameter each."""

    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)))

    def __init__(self, config=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        k, params = action
        self.t += 1
        reward = float(k == 0) * (1 - abs(float(params[0]) - 0.5))
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return obs, reward, self.t >= 5, False, {}


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c.training(variant="dqn"), r"variant='dqn' is not one of \['pdqn'"),
    (lambda c: c.training(exploration_noise="pink"), "exploration_noise='pink'"),
    (lambda c: c.training(tau_q=1.5), r"tau_q=1.5 must be > 0 and <= 1"),
    (lambda c: c.training(lr=0.1), "lr=0.1 is not used"),
    (lambda c: c.training(q_hiddens=[0]), "list of positive ints"),
    (lambda c: c.training(replay_capacity=10), "smaller than one batch"),
    (lambda c: c.training(replay_capacity=200), "exceeds replay_capacity=200"),
    (lambda c: c.training(action_gradient_strategy="clip"), "action_gradient_strategy='clip'"),
    (lambda c: c.training(initial_params=[0.0]), "initial_params has 1 values"),
    (lambda c: setattr(c, "env_config", {}), "env_config=\\{'scale'"),
    (lambda c: c.environment(ToyHybridEnv).training(param_layout=None), "ambiguous"),
])
def test_config_validation(mutate, match):
    config = PDQNConfig().environment("rllib_ext/Platform-v0", env_config={"scale": True})
    mutate(config)
    with pytest.raises(ValueError, match=match):
        config.validate()
