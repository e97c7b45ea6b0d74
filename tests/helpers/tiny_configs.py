"""Tiny configs the test modules share (no test module imports another): P-DQN, PA-DDPG and
ACE on small networks and budgets, and a minimal valid experiment file."""

from __future__ import annotations

import textwrap

from rllib_ext import ACEConfig, PADDPGConfig, PDQNConfig
from rllib_ext.algorithms.ace import ACE

PLATFORM = ("rllib_ext/Platform-v0", {"scale": True})

# CausalReach with 2 joints (one matters, one is a distractor): 5 causal variables, so the
# DirectLiNGAM fits take milliseconds. Registered with Tune by tiny_ace().
ACE_ENV = "ace_test/CausalReach2"
ACE_DIM = 2


def register_ace_env() -> None:
    from ray.tune.registry import register_env

    from rllib_ext.envs.causal_reach import CausalReachEnv

    register_env(ACE_ENV, lambda cfg: CausalReachEnv(influence=[1.0, 0.0], max_steps=20))


def _tiny_parameterised(config, env, **training):
    env_id, env_config = env if isinstance(env, tuple) else (env, {})
    return (
        config
        .environment(env_id, env_config=env_config)
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=16, num_steps_sampled_before_learning_starts=32,
                  replay_capacity=500, **training)
        .reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )


def tiny_pdqn(env=PLATFORM, **training):
    return _tiny_parameterised(PDQNConfig(), env, q_hiddens=[8], param_hiddens=[8], **training)


def tiny_paddpg(env=PLATFORM, **training):
    return _tiny_parameterised(PADDPGConfig(), env, actor_hiddens=[8], critic_hiddens=[8],
                               **training)


class SlowFitACE(ACE):
    """ACE whose causal fits sleep 3 s first: a slow fit, on demand."""

    causal_fit_delay_s = 3.0


def tiny_ace(*, learn=True, runners=0, slow_fit=False, **training):
    """Tiny ACE; ``slow_fit``: the algorithm is :class:`SlowFitACE`."""
    register_ace_env()
    training = {
        "train_batch_size_per_learner": 16,
        "num_steps_sampled_before_learning_starts": 32 if learn else 2000,  # = capacity
        "causal_sample_size": 40,
        "causal_update_interval": 10**9,
        "reset_interval": 0,
        # Uniform-random actions for the first 30 env steps: the switch to the policy falls
        # inside the second 20-step episode.
        "random_warmup_steps": 30,
        "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 2000,
                                 "alpha": 0.6, "beta": 0.4},
        **training,
    }
    return (
        ACEConfig(algo_class=SlowFitACE if slow_fit else None)
        .environment(ACE_ENV)
        # 10-step fragments: every iteration samples exactly 20 env steps (one episode).
        .env_runners(num_env_runners=runners, rollout_fragment_length=10)
        .training(**training)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .reporting(min_sample_timesteps_per_iteration=20, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )


#: A minimal valid experiment file (PG on CartPole, 400 env steps).
GOOD_EXPERIMENT = textwrap.dedent(
    """
    algorithm: PG
    env: CartPole-v1
    config:
      training: {lr: 0.01, train_batch_size_per_learner: 200}
      env_runners: {num_env_runners: 0, num_envs_per_env_runner: 4}
      rl_module: {model_config: {fcnet_hiddens: [8]}}
    stop: {num_env_steps_sampled_lifetime: 400}
    pass: {threshold: 50, within_env_steps: 10000}
    """
)
