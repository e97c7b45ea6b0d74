"""The learners take the reference agents' gradient step, update for update.

cycraig/MP-DQN (``pdqn.py``, ``paddpg.py``, ``_optimize_td_loss``) steps the critic first, then
takes dQ/da for the actor's loss from the *just-updated* critic on the same batch, steps the
actor, then Polyak-updates both targets. Each test below writes that step out by hand (plain
PyTorch on a copy of the learner's networks: its own TD target, MSE, inverting gradients, norm
clip, Adam and Polyak), runs N of them and N through the RLlib learner on the same batches
from the same weights, and compares every weight. It also runs the *joint* order (both losses
on the pre-step critic, one backward) to show the comparison tells the two apart.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_ext import PADDPGConfig, PDQNConfig
from rllib_ext.algorithms.paddpg.paddpg_keys import ACTION_SCORES
from rllib_ext.core.parameterised.parameterised_learner import ACTION_INDEX, ACTION_PARAMS
from rllib_ext.envs import make

PLATFORM = "rllib_ext/Platform-v0"
N_UPDATES, BATCH = 6, 16
#: Large enough step sizes that one critic step visibly moves dQ/da (the reference's Platform
#: rates would separate the two orders by less than float noise after a few steps).
RATES = {"pdqn": {"lr_q": 0.05, "lr_param": 0.01}, "paddpg": {"lr_critic": 0.05,
                                                                "lr_actor": 0.01}}
TOLERANCE = 1e-6


def _batches(with_scores: bool, seed=0):
    rng = np.random.default_rng(seed)
    n = N_UPDATES * BATCH
    data = {
        Columns.OBS: rng.uniform(-1, 1, (n, 9)).astype(np.float32),
        Columns.NEXT_OBS: rng.uniform(-1, 1, (n, 9)).astype(np.float32),
        ACTION_INDEX: rng.integers(0, 3, n),
        # Some parameters outside [-1, 1], where inverting gradients flips the sign.
        ACTION_PARAMS: rng.uniform(-1.3, 1.3, (n, 3)).astype(np.float32),
        Columns.REWARDS: rng.uniform(0, 1, n).astype(np.float32),
        Columns.TERMINATEDS: (rng.uniform(size=n) < 0.2).astype(np.float32),
    }
    if with_scores:
        data[ACTION_SCORES] = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    return data


def _invert(grad, values, low=-1.0, high=1.0):
    """Hausknecht & Stone's rule, as the reference writes it (grad > 0 wants to increase)."""
    out = grad.clone()
    up = grad > 0
    out[up] *= ((high - values) / (high - low))[up]
    out[~up] *= ((values - low) / (high - low))[~up]
    return out


def _soft_update(online, target, tau):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.copy_(tau * o + (1 - tau) * t)


def _step(optimizer, params, loss, clip):
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def _joint_step(optimizers, params, losses, clip):
    for optimizer in optimizers:
        optimizer.zero_grad()
    sum(losses).backward()
    for optimizer, p in zip(optimizers, params, strict=True):
        torch.nn.utils.clip_grad_norm_(p, clip)
        optimizer.step()


def reference_pdqn(module, data, cfg, order: str):
    """N P-DQN gradient steps in the reference's order ("sequential") or the joint order."""
    q_net, param_net = module.q_net, module.param_net
    param_weights = [p for p in param_net.parameters() if p.requires_grad]
    q_opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr_q)
    p_opt = torch.optim.Adam(param_weights, lr=cfg.lr_param)
    for i in range(N_UPDATES):
        b = {k: torch.as_tensor(v[i * BATCH:(i + 1) * BATCH]) for k, v in data.items()}
        s, a = b[Columns.OBS], b[ACTION_INDEX].long()

        with torch.no_grad():
            next_q = module.target_q_net(b[Columns.NEXT_OBS],
                                         module.target_param_net(b[Columns.NEXT_OBS]))
            y = b[Columns.REWARDS] + cfg.gamma * (1 - b[Columns.TERMINATEDS]) * next_q.max(1)[0]
        q_loss = F.mse_loss(q_net(s, b[ACTION_PARAMS]).gather(1, a[:, None]).squeeze(1), y)

        def param_loss(s=s):
            with torch.no_grad():
                x = param_net(s)
            x.requires_grad_(True)
            q_net(s, x).sum(1).mean().backward()  # "sum" weighting: all K Q-values
            delta = x.grad.clone()
            x = param_net(s)
            return -(_invert(delta, x.detach()) * x).sum()

        if order == "sequential":
            _step(q_opt, q_net.parameters(), q_loss, cfg.grad_clip)
            _step(p_opt, param_weights, param_loss(), cfg.grad_clip)
        else:
            _joint_step([q_opt, p_opt], [list(q_net.parameters()), param_weights],
                        [q_loss, param_loss()], cfg.grad_clip)
        _soft_update(q_net, module.target_q_net, cfg.tau_q)
        _soft_update(param_net, module.target_param_net, cfg.tau_param)
    return module


def reference_paddpg(module, data, cfg, order: str):
    """N PA-DDPG gradient steps in the reference's order ("sequential") or the joint order."""
    actor, critic = module.actor, module.critic
    actor_weights = [p for p in actor.parameters() if p.requires_grad]
    betas = tuple(cfg.adam_betas)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr_critic, betas=betas)
    actor_opt = torch.optim.Adam(actor_weights, lr=cfg.lr_actor, betas=betas)
    for i in range(N_UPDATES):
        b = {k: torch.as_tensor(v[i * BATCH:(i + 1) * BATCH]) for k, v in data.items()}
        s = b[Columns.OBS]
        with torch.no_grad():
            next_q = module.target_critic(b[Columns.NEXT_OBS],
                                          *module.target_actor(b[Columns.NEXT_OBS]))
            y = b[Columns.REWARDS] + cfg.gamma * (1 - b[Columns.TERMINATEDS]) * next_q
        critic_loss = F.mse_loss(critic(s, b[ACTION_SCORES], b[ACTION_PARAMS]), y)

        def actor_loss(s=s):
            with torch.no_grad():
                scores, params = actor(s)
            out = torch.cat([scores, params], 1).requires_grad_(True)
            critic(s, out[:, :3], out[:, 3:]).mean().backward()
            delta = out.grad.clone()
            scores, params = actor(s)
            delta = torch.cat([_invert(delta[:, :3], scores.detach()),
                               _invert(delta[:, 3:], params.detach())], 1)
            return -(delta * torch.cat([scores, params], 1)).sum()

        if order == "sequential":
            _step(critic_opt, critic.parameters(), critic_loss, cfg.grad_clip)
            _step(actor_opt, actor_weights, actor_loss(), cfg.grad_clip)
        else:
            _joint_step([critic_opt, actor_opt], [list(critic.parameters()), actor_weights],
                        [critic_loss, actor_loss()], cfg.grad_clip)
        _soft_update(actor, module.target_actor, cfg.tau_actor)
        _soft_update(critic, module.target_critic, cfg.tau_critic)
    return module


def _config(algo: str, variant: str | None):
    if algo == "pdqn":
        config = PDQNConfig().training(variant=variant, q_hiddens=[16], param_hiddens=[16],
                                       q_output_init_std=0.1, param_output_init_std=0.1)
    else:
        config = PADDPGConfig().training(actor_hiddens=[16], critic_hiddens=[16])
    return (config.environment(PLATFORM, env_config={"scale": True})
            .training(train_batch_size_per_learner=BATCH, **RATES[algo])
            .debugging(seed=0))


def _max_difference(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


@pytest.mark.parametrize("algo, variant", [
    ("pdqn", "pdqn"), ("pdqn", "mpdqn"), ("pdqn", "spdqn"), ("paddpg", None)])
def test_learner_takes_the_reference_gradient_steps(ray_session, algo, variant):
    config = _config(algo, variant)
    learner = config.build_learner(env=make(PLATFORM, scale=True))
    module = learner.module["default_policy"].unwrapped()
    start = copy.deepcopy(module)
    data = _batches(with_scores=algo == "paddpg")
    reference = reference_pdqn if algo == "pdqn" else reference_paddpg

    # All N batches as one RLlib minibatch: the learner cuts it into N consecutive steps.
    learner.update(
        batch=MultiAgentBatch({"default_policy": SampleBatch(data)},
                              env_steps=N_UPDATES * BATCH),
        minibatch_size=None, num_epochs=1, shuffle_batch_per_epoch=False,
        timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 1000},
    )
    sequential = reference(copy.deepcopy(start), data, learner.config, "sequential")
    joint = reference(copy.deepcopy(start), data, learner.config, "joint")

    assert _max_difference(module, start) > 1e-3  # it did train
    assert _max_difference(module, sequential) <= TOLERANCE
    # The comparison can fail: the joint order ends far from the reference's weights.
    assert _max_difference(joint, sequential) > 100 * TOLERANCE
