"""Framework-agnostic learner pieces shared by the parameterised-action algorithms: batch and
metric keys, the ε schedule, and a Learner that pushes the current ε into every module."""

from __future__ import annotations

import math

from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_EPISODES_LIFETIME

# Batch columns (besides Columns.OBS / NEXT_OBS / REWARDS / TERMINATEDS).
ACTION_INDEX = "action_index"  # (B,) int64: the discrete action taken
ACTION_PARAMS = "action_params"  # (B, P) float32: all K actions' parameters, normalised
#: Module buffer holding the current exploration rate (synced to env runners with the weights).
EPSILON_BUFFER = "epsilon"

# Metric keys (per module) every parameterised-action learner logs.
#: The current exploration rate.
EPSILON_KEY = "epsilon"
#: Mean Q-value of the batch's taken actions.
Q_MEAN_KEY = "q_mean"
#: Mean TD target.
TARGET_MEAN_KEY = "td_target_mean"
#: Norm of dQ/d(params) after the action-gradient strategy.
ACTION_GRAD_NORM_KEY = "action_grad_norm"
#: Fraction of the proposed parameters outside [-1, 1].
PARAMS_OUT_OF_BOUNDS_KEY = "params_out_of_bounds"

#: RLlib normalises Box actions to [-1, 1]; learners (and the action-gradient hook) work there.
PARAM_LOW, PARAM_HIGH = -1.0, 1.0


def linear_epsilon(count: float, *, initial: float, final: float, duration: int) -> float:
    """eps = initial - (initial - final) * count / duration, then ``final`` (the reference's
    schedule; ``count`` is episodes or env steps)."""
    if duration <= 0 or count >= duration:
        return final
    return initial - (initial - final) * count / duration


def exponential_epsilon(count: float, *, initial: float, final: float, duration: int) -> float:
    """eps = final + (initial - final) * exp(-count / duration) (DI-engine's gym-hybrid
    schedule, ``duration`` the time constant); ``final`` if ``duration`` is 0."""
    if duration <= 0:
        return final
    return final + (initial - final) * math.exp(-count / duration)


def scheduled_epsilon(config, timesteps: dict) -> float:
    """ε of ``config``'s schedule (``epsilon_schedule``) after the lifetime counts in
    ``timesteps`` (RLlib's ``NUM_EPISODES_LIFETIME`` completed episodes or
    ``NUM_ENV_STEPS_SAMPLED_LIFETIME``, over all env runners, by ``epsilon_decay_unit``)."""
    by_episode = config.epsilon_decay_unit == "episode"
    count = timesteps.get(NUM_EPISODES_LIFETIME if by_episode else
                          NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0
    schedule = (exponential_epsilon if config.epsilon_schedule == "exponential"
                else linear_epsilon)
    return schedule(count, initial=config.epsilon_initial, final=config.epsilon_final,
                    duration=config.epsilon_decay_duration)


class EpsilonScheduleLearner(Learner):
    """Sets the exploration rate of every module before each update, from the same counts the
    algorithm uses for the env runners' ε, so the weights synced to them carry the same value.
    Losses live in the torch subclasses."""

    @override(Learner)
    def before_gradient_based_update(self, *, timesteps: dict) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        epsilon = scheduled_epsilon(self.config, timesteps)
        for module_id in self.module.keys():
            if not self.should_module_be_updated(module_id):
                continue  # a frozen policy keeps its exploration rate (policies_to_train)
            getattr(self.module[module_id].unwrapped(), EPSILON_BUFFER).fill_(epsilon)
            # The value in force at the end of the iteration: RLlib merges the results of an
            # iteration's updates (and learners) into one, and ε never rises (validate()
            # rejects epsilon_final > epsilon_initial), so the smallest is the latest.
            self.metrics.log_value((module_id, EPSILON_KEY), epsilon, reduce="min")
