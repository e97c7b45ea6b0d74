"""P-DQN pieces without Ray: multi-pass and split Q, loss options, config validation."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from rllib_ext import PDQNConfig
from rllib_ext.algorithms.pdqn.torch.default_pdqn_torch_rl_module import QNet
from rllib_ext.algorithms.pdqn.torch.pdqn_torch_learner import (
    PDQNTorchLearner,
    compute_param_loss,
    weighted_q,
)
from rllib_ext.core.parameterised.action_layout import layout_from_space
from rllib_ext.core.parameterised.parameterised_learner import (
    ACTION_INDEX,
    PARAM_HIGH,
    PARAM_LOW,
)
from rllib_ext.core.parameterised.torch.networks import ObservationEncoder
from rllib_ext.hooks import ActionGradientHook
from tests.helpers.toy_env import ToyHybridEnv

BOX1 = spaces.Box(-1, 1, (1,))
BOX2 = spaces.Box(-1, 1, (2,))


def _vector(n: int) -> ObservationEncoder:
    """The encoder of an n-feature vector observation (the identity)."""
    return ObservationEncoder(spaces.Box(-1, 1, (n,)), BOX1, {})


def test_multipass_equals_k_single_action_passes():
    torch.manual_seed(0)
    layout = layout_from_space(spaces.Tuple((spaces.Discrete(3), BOX2, BOX1, BOX1)))
    q = QNet("mpdqn", _vector(5), layout, [16], "relu", None)
    obs, params = torch.randn(7, 5), torch.randn(7, 4)
    out = q(obs, params)
    for a in range(3):
        only_a = params * layout.owner_mask()[a]  # other actions' slots zeroed
        torch.testing.assert_close(out[:, a], q.net(torch.cat([obs, only_a], -1))[:, a])


def test_split_q_feeds_each_action_only_its_parameters():
    torch.manual_seed(0)
    layout = layout_from_space(spaces.Tuple((spaces.Discrete(2), BOX2, BOX1)))
    q = QNet("spdqn", _vector(3), layout, [8], "relu", None)
    obs, params = torch.randn(4, 3), torch.randn(4, 3)
    out = q(obs, params)
    torch.testing.assert_close(out[:, 0], q.nets[0](torch.cat([obs, params[:, :2]], -1))[:, 0])
    torch.testing.assert_close(out[:, 1], q.nets[1](torch.cat([obs, params[:, 2:]], -1))[:, 0])


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


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c.training(variant="dqn"), r"variant='dqn' must be one of \['pdqn'"),
    (lambda c: c.training(exploration_noise="pink"), "exploration_noise='pink'"),
    (lambda c: c.training(tau_q=1.5), r"tau_q=1.5 must be a finite number in \(0, 1\]"),
    (lambda c: c.training(lr=0.1), "lr=0.1 is not used"),
    (lambda c: c.training(q_hiddens=[0]), "list of positive integer layer widths"),
    (lambda c: c.training(replay_capacity=10), "smaller than one batch"),
    (lambda c: c.training(replay_capacity=200), "exceeds replay_capacity=200"),
    (lambda c: c.training(action_gradient_strategy="clip"), "action_gradient_strategy='clip'"),
    (lambda c: c.training(initial_params=[0.0]), "initial_params has 1 values"),
    (lambda c: c.training(reward_scale=0), r"reward_scale=0 must be a finite number > 0"),
    (lambda c: c.training(initial_param_weights=[[0.0] * 9] * 2),
     r"initial_param_weights has shape \(2, 9\).*give 3 rows of 9 numbers"),
    (lambda c: setattr(c, "env_config", {}), "env_config=\\{'scale'"),
    (lambda c: c.environment(ToyHybridEnv).training(param_layout=None), "ambiguous"),
    (lambda c: c.rl_module(model_config={"fcnet_hiddens": [32]}),
     r"model_config sets \['fcnet_hiddens'\].*\(q_hiddens, param_hiddens, activation\)"),
])
def test_config_validation(mutate, match):
    config = PDQNConfig().environment("rllib_ext/Platform-v0", env_config={"scale": True})
    mutate(config)
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_initial_policy_is_bias_plus_weights_times_obs():
    """The frozen passthrough layer: before any training the parameter network proposes
    initial_params + W @ obs (the MLP body's output layer starts at zero), and W never trains."""
    from rllib_ext.algorithms.pdqn.torch.default_pdqn_torch_rl_module import ParamNet

    weights = [[0.5, 0.0], [0.0, -2.0], [1.0, 1.0]]
    net = ParamNet(_vector(2), 3, [4], "relu", None, [0.1, 0.2, 0.3], False, weights)
    obs = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    expected = torch.tensor([[0.1 + 0.5, 0.2 - 4.0, 0.3 + 3.0], [0.1 - 0.5, 0.2 - 1.0, 0.3 - 0.5]])
    torch.testing.assert_close(net(obs), expected)
    assert not any(p.requires_grad for p in net.passthrough.parameters())


# -- the action-gradient hook in the parameter loss ----------------------------------------------


class _SpyHook(ActionGradientHook):
    """Records what reaches the hook and returns ``scale`` times the inverted gradient."""

    def __init__(self, scale=1.0):
        super().__init__("invert")
        self.calls, self.scale = [], scale

    def __call__(self, grad, values, low, high):
        self.calls.append((grad.clone(), values.clone(), low, high))
        return self.scale * super().__call__(grad, values, low, high)


def _learner(**training):
    from rllib_ext.envs.wrappers import make

    config = PDQNConfig().environment("rllib_ext/Platform-v0", env_config={"scale": True}) \
        .training(q_hiddens=[8], param_hiddens=[8], **training)
    learner = config.build_learner(env=make("rllib_ext/Platform-v0", scale=True))
    return learner, learner.module["default_policy"].unwrapped()


def _batch(n=4):
    g = torch.Generator().manual_seed(0)
    return {Columns.OBS: torch.rand(n, 9, generator=g),
            ACTION_INDEX: torch.tensor([0, 1, 2, 1][:n])}


def test_param_loss_passes_dq_dx_through_the_hook():
    """The hook sees dQ/dx of every parameter at the network's proposals, with the [-1, 1]
    bounds, and its output (not the raw dQ/dx) drives the parameter network's gradient."""
    learner, module = _learner()
    batch = _batch()
    spy = _SpyHook()
    loss, _ = compute_param_loss(module, batch, learner.config, spy)
    ((grad, values, low, high),) = spy.calls
    assert grad.shape == (4, 3) and (low, high) == (PARAM_LOW, PARAM_HIGH)
    torch.testing.assert_close(values, module.param_net(batch[Columns.OBS]).detach())
    x = module.param_net(batch[Columns.OBS])
    q = weighted_q(module.q_net(batch[Columns.OBS], x), batch[ACTION_INDEX], learner.config)
    (expected,) = torch.autograd.grad(q.sum(-1).mean(), x)
    torch.testing.assert_close(grad, expected)
    # A hook that scales its output by 3 scales the parameter network's gradient by 3.
    params = [p for p in module.param_net.parameters() if p.requires_grad]
    base = torch.autograd.grad(loss, params)
    tripled, _ = compute_param_loss(module, batch, learner.config, _SpyHook(scale=3.0))
    for g1, g3 in zip(base, torch.autograd.grad(tripled, params), strict=True):
        torch.testing.assert_close(g3, 3.0 * g1)


class _SpyLearner(PDQNTorchLearner):
    def make_action_gradient_hook(self):
        return _SpyHook()


def test_learner_update_uses_make_action_gradient_hook():
    """``make_action_gradient_hook`` is the plug-in point: a learner class that overrides it
    gets its hook called once per gradient step of the parameter network."""
    learner, module = _learner(learner_class=_SpyLearner)
    assert isinstance(learner.action_gradient_hook, _SpyHook)
    stages = dict(learner.update_stages())
    stages["param"](module, _batch(), learner.config)
    stages["param"](module, _batch(), learner.config)
    assert len(learner.action_gradient_hook.calls) == 2
