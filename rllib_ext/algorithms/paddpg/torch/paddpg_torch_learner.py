"""Torch losses of PA-DDPG (Hausknecht & Stone 2016, "Deep Reinforcement Learning in
Parameterized Action Space"): DDPG over the actor's discrete-action scores and parameters, with
the action-gradient hook (inverting gradients by default) on both."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override

from rllib_ext.algorithms.paddpg.paddpg_keys import (
    ACTION_SCORES,
    ACTOR_LOSS_KEY,
    CRITIC_LOSS_KEY,
    SCORES_OUT_OF_BOUNDS_KEY,
)
from rllib_ext.core.parameterised.parameterised_learner import (
    ACTION_GRAD_NORM_KEY,
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

#: Bounds of the discrete-action scores for the action-gradient hook (the reference's [-1, 1]).
SCORE_LOW, SCORE_HIGH = -1.0, 1.0


class PADDPGTorchLearner(ParameterisedActionTorchLearner):
    """Two optimizers per module: ``"critic"`` (``lr_critic``) and ``"actor"`` (``lr_actor``),
    stepped in that order (the reference's ``paddpg.py``: the actor's dQ/da comes from the
    just-updated critic); soft target updates of both after every gradient step. The
    action-gradient hook (``make_action_gradient_hook``, overridable) comes from the base
    class."""

    @override(ParameterisedActionTorchLearner)
    def optimized_networks(self, module, config):
        return [("critic", module.critic, config.lr_critic),
                ("actor", module.actor, config.lr_actor)]

    @override(ParameterisedActionTorchLearner)
    def target_networks(self, module, config):
        return [(module.critic, module.target_critic, config.tau_critic),
                (module.actor, module.target_actor, config.tau_actor)]

    @override(ParameterisedActionTorchLearner)
    def update_stages(self):
        return [("critic", compute_critic_loss),
                ("actor", functools.partial(compute_actor_loss, hook=self.action_gradient_hook))]


def compute_critic_loss(module, batch, config):
    """(critic_loss, stats): the critic's TD regression on ``batch`` (a dict of tensors)."""
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    not_done = 1.0 - batch[Columns.TERMINATEDS].float()
    # DDPG (Lillicrap et al. 2016, Eq. 4-6):
    #   y = c * r + gamma * Q_target(s', mu_target(s'))    (c = reward_scale)
    # with mu = (scores, parameters) from the *target* actor; no gradient flows into y.
    with torch.no_grad():
        next_q = module.target_critic(next_obs, *module.target_actor(next_obs))
        y = config.reward_scale * batch[Columns.REWARDS] + config.gamma * not_done * next_q
    # Q(s, a) with the scores and all K parameter vectors *stored in replay*: they are data, so
    # this loss reaches only the critic.
    q = module.critic(obs, batch[ACTION_SCORES], batch[ACTION_PARAMS])
    critic_loss = F.mse_loss(q, y)
    return critic_loss, {CRITIC_LOSS_KEY: critic_loss.detach(), Q_MEAN_KEY: q.mean().detach(),
                         TARGET_MEAN_KEY: y.mean()}


def compute_actor_loss(module, batch, config, hook: ActionGradientHook):
    """(actor_loss, stats): the actor's loss on ``batch``, taking dQ/da from ``module.critic``
    as it is now (the learner calls it after the critic step)."""
    obs = batch[Columns.OBS]
    # Deterministic policy gradient through bounded outputs (H&S 2016, Sec. 4.3):
    #   grad_theta J = E_s[ dQ/da(s, a) * da/dtheta ],  a = mu_theta(s) = (scores, params)
    scores, params = module.actor(obs)
    # Leaf copies: dQ/da is taken w.r.t. them, so the critic's weights get no gradient from
    # this loss (the reference zeroes the critic's gradients after the same backward).
    scores_leaf = scores.detach().requires_grad_(True)
    params_leaf = params.detach().requires_grad_(True)
    objective = module.critic(obs, scores_leaf, params_leaf).mean()
    dq_dscores, dq_dparams = torch.autograd.grad(objective, (scores_leaf, params_leaf))
    # Bound handling on *both* parts, before the chain rule (the reference inverts the
    # gradients of the scores with bounds [-1, 1] and of the parameters with theirs).
    dq_dscores = hook(dq_dscores, scores_leaf.detach(), SCORE_LOW, SCORE_HIGH)
    dq_dparams = hook(dq_dparams, params_leaf.detach(), PARAM_LOW, PARAM_HIGH)
    # Surrogate whose gradient w.r.t. theta is -(dQ/da . da/dtheta): minimising it ascends Q
    # (sign flip). dQ/da is data, (scores, params) carry the graph into the actor. Summed over
    # the batch: dQ/da already carries the 1/B of the mean above.
    actor_loss = -((dq_dscores * scores).sum() + (dq_dparams * params).sum())
    return actor_loss, {
        ACTOR_LOSS_KEY: actor_loss.detach(),
        ACTION_GRAD_NORM_KEY: torch.cat([dq_dscores, dq_dparams], dim=-1).norm(dim=-1).mean(),
        PARAMS_OUT_OF_BOUNDS_KEY: fraction_out_of_bounds(params, PARAM_LOW, PARAM_HIGH),
        SCORES_OUT_OF_BOUNDS_KEY: fraction_out_of_bounds(scores, SCORE_LOW, SCORE_HIGH),
    }
