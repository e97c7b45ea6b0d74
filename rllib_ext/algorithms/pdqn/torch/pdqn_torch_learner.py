"""Torch losses of P-DQN / MP-DQN / SP-DQN (Xiong et al. 2018; Bester et al. 2019)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.pdqn.pdqn_keys import PARAM_LOSS_KEY, Q_LOSS_KEY
from rllib_ext.core.parameterised.parameterised_learner import (
    ACTION_GRAD_NORM_KEY,
    ACTION_INDEX,
    ACTION_PARAMS,
    PARAM_HIGH,
    PARAM_LOW,
    PARAMS_OUT_OF_BOUNDS_KEY,
    Q_MEAN_KEY,
    TARGET_MEAN_KEY,
)
from rllib_ext.core.parameterised.torch.parameterised_torch_learner import (
    ParameterisedActionTorchLearner,
    fraction_out_of_bounds,
)
from rllib_ext.hooks import ActionGradientHook


class PDQNTorchLearner(ParameterisedActionTorchLearner):
    """Two optimizers per module: ``"q"`` (Q-network, ``lr_q``) and ``"param"`` (parameter
    network, ``lr_param``), stepped in that order (the Q step first, then the parameter loss on
    the updated Q-network); soft target updates after every gradient step. The
    action-gradient hook (``make_action_gradient_hook``, overridable) comes from the base
    class."""

    @override(ParameterisedActionTorchLearner)
    def optimized_networks(self, module, config):
        return [("q", module.q_net, config.lr_q), ("param", module.param_net, config.lr_param)]

    @override(ParameterisedActionTorchLearner)
    def target_networks(self, module, config):
        # Polyak rates per network after every gradient step, as the reference.
        return [(module.q_net, module.target_q_net, config.tau_q),
                (module.param_net, module.target_param_net, config.tau_param)]

    @override(ParameterisedActionTorchLearner)
    def update_stages(self):
        return [("q", compute_q_loss),
                ("param", functools.partial(compute_param_loss, hook=self.action_gradient_hook))]


def compute_q_loss(module, batch, config):
    """(q_loss, stats): the Q-network's TD regression on ``batch`` (a dict of tensors)."""
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    k = batch[ACTION_INDEX].long()
    not_done = 1.0 - batch[Columns.TERMINATEDS].float()
    # Xiong et al. 2018, Eq. 8; Bester et al. 2019, Alg. 1:
    #   y = c * r + gamma * max_a' Q_target(s', a', x_target(s'))    (c = reward_scale)
    # Targets come from the *target* networks and a plain max (not double Q), as in the
    # reference; no gradient flows into them.
    with torch.no_grad():
        next_q = module.target_q_net(next_obs, module.target_param_net(next_obs))
        rewards = config.reward_scale * batch[Columns.REWARDS]
        y = rewards + config.gamma * not_done * next_q.max(dim=-1).values
    # Q(s, a_b, x_b) with the parameters *stored in replay* (all K of them): they are data, so
    # this loss reaches only q_net.
    q_taken = module.q_net(obs, batch[ACTION_PARAMS]).gather(1, k.unsqueeze(1)).squeeze(1)
    q_loss = F.mse_loss(q_taken, y)
    return q_loss, {Q_LOSS_KEY: q_loss.detach(), Q_MEAN_KEY: q_taken.mean().detach(),
                    TARGET_MEAN_KEY: y.mean()}


def compute_param_loss(module, batch, config, hook: ActionGradientHook):
    """(param_loss, stats): the parameter network's loss on ``batch``, taking dQ/dx from
    ``module.q_net`` as it is now (the learner calls it after the Q step)."""
    obs, k = batch[Columns.OBS], batch[ACTION_INDEX].long()
    # Ascend Q along the action-parameter gradient (Xiong et al. 2018, Eq. 10):
    #   grad_theta J = sum_b dQ/dx(s_b, x_b) * dx/dtheta,  x = x_theta(s)
    x = module.param_net(obs)
    # A leaf copy of x: dQ/dx is taken w.r.t. it, so the Q-network's weights get no gradient from
    # this loss (the reference accumulates them and discards them later).
    x_leaf = x.detach().requires_grad_(True)
    objective = weighted_q(module.q_net(obs, x_leaf), k, config).sum(dim=-1).mean()
    (dq_dx,) = torch.autograd.grad(objective, x_leaf)
    # Bound handling (inverting gradients by default) on dQ/dx, *before* the chain rule.
    dq_dx = hook(dq_dx, x_leaf.detach(), PARAM_LOW, PARAM_HIGH)
    if config.zero_index_gradients:
        dq_dx = dq_dx * module.q_net.owner_mask[k]  # only the taken action's parameters
    # Surrogate whose gradient w.r.t. theta is -(dq_dx . dx/dtheta): minimising it ascends Q
    # (sign flip). dq_dx is data here, x carries the graph into param_net. Summed, not averaged,
    # over the batch: dq_dx already carries the 1/B of the mean above.
    param_loss = -(dq_dx * x).sum()
    return param_loss, {
        PARAM_LOSS_KEY: param_loss.detach(),
        ACTION_GRAD_NORM_KEY: dq_dx.norm(dim=-1).mean(),
        PARAMS_OUT_OF_BOUNDS_KEY: fraction_out_of_bounds(x, PARAM_LOW, PARAM_HIGH),
    }


def weighted_q(q_all: torch.Tensor, k: torch.Tensor, config) -> torch.Tensor:
    """Q-values entering the parameter loss, per the reference's loss options."""
    num_actions = q_all.shape[-1]
    if config.param_loss_weighting == "weighted":  # empirical action frequencies
        w = torch.bincount(k, minlength=num_actions).to(q_all.dtype) / k.shape[0]
    elif config.param_loss_weighting == "average":
        w = q_all.new_full((num_actions,), 1.0 / num_actions)
    elif config.param_loss_weighting == "random_weighted":
        w = torch.rand(num_actions, dtype=q_all.dtype, device=q_all.device)
        w = w / w.norm()
    else:  # "sum"
        w = q_all.new_ones(num_actions)
    q = q_all * w
    if config.indexed:  # only Q(s, a_b) of the action taken
        q = q * F.one_hot(k, num_actions).to(q.dtype)
    return q

