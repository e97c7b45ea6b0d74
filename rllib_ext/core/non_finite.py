"""Non-finite numbers never train a model: guards on the env runners and in the learners.

**Env data** (``non_finite_env_data``, set with ``config.env_runners(...)``). Every sub-env of
the plugin's env runner (:class:`GuardedEnvRunner`) is wrapped in :class:`NonFiniteGuard`,
which checks each step's observation and reward before RLlib's env runner sees them:

* ``"drop"`` (default): a step with a NaN/inf observation or reward is dropped. The wrapper
  ends the episode there (truncated) and hands RLlib the last finite observation, so the
  module never sees the bad values; the env runner then cuts that placeholder step off the
  episode before returning it. The episode thus ends, truncated, at its last good step: the
  replays and PG's returns only ever see real, finite transitions. Each drop is counted in
  the result metric ``env_runners/num_non_finite_env_steps_dropped`` (lifetime) and the
  first one per env is logged as a warning naming the field and value.
* ``"raise"``: the env runner raises :class:`NonFiniteEnvDataError` naming the env, the field,
  the value and the step.

A non-finite *reset* observation cannot be dropped (there is no step to cut): it always
raises. In a **multi-agent** env (:class:`GuardedMultiAgentEnvRunner`) a NaN/inf observation
or reward of any agent always raises, whatever the mode: a dropped step there would have to be
cut from every agent's episode at once, which RLlib's multi-agent episodes offer no safe way
to do, and stopping is the one behaviour that never trains on the bad values.

**Gradient steps.** :class:`SkipNonFiniteGradients` (mixin for the torch learners) skips an
optimizer step whose gradients hold a NaN/inf (a non-finite loss gives those) and counts it in
``learners/__all_modules__/num_non_finite_gradient_steps_skipped``. RLlib's own rule zeroes
such gradients and steps anyway (Adam's moments still move the weights).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES

from rllib_ext.core.rllib_compat import config_value_error, foreach_norm, learner_params
from rllib_ext.core.whole_episodes import WholeEpisodeSampling

logger = logging.getLogger(__name__)

#: ``non_finite_env_data`` values.
NON_FINITE_MODES = ("drop", "raise")
#: Env runner metric: env steps dropped for non-finite data (lifetime sum).
NON_FINITE_ENV_STEPS_KEY = "num_non_finite_env_steps_dropped"
#: Learner metric (under ``ALL_MODULES``): optimizer steps skipped for non-finite gradients.
NON_FINITE_GRADIENT_STEPS_KEY = "num_non_finite_gradient_steps_skipped"
#: Info key the guard sets on the placeholder step that ends an episode at a dropped step.
DROPPED_STEP_INFO_KEY = "rllib_ext_non_finite_step_dropped"


class NonFiniteEnvDataError(ValueError):
    """An env returned a NaN or inf observation or reward (``non_finite_env_data="raise"``, or
    at reset)."""


def first_non_finite(value: Any, name: str) -> tuple[str, Any] | None:
    """The first NaN/inf leaf of a (nested dict/tuple) observation or reward, as
    ``("observation[2]", nan)``; None when all numeric leaves are finite."""
    # Fast paths for what almost every step returns (a float reward, a float array): the
    # check runs twice per env step, and the generic path below costs several times more.
    if isinstance(value, float):
        return None if math.isfinite(value) else (name, value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and np.isfinite(value).all():
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_non_finite(item, f"{name}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray)
                                            and value.dtype == object):
        # (A vector multi-agent env returns one dict per sub-env in an object array.)
        for i, item in enumerate(value):
            found = first_non_finite(item, f"{name}[{i}]")
            if found:
                return found
        return None
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating) or np.isfinite(array).all():
        return None
    index = np.argwhere(~np.isfinite(array))[0]
    where = f"{name}[{', '.join(map(str, index))}]" if array.ndim else name
    return where, array[tuple(index)].item()


class NonFiniteGuard(gym.Wrapper):
    """Checks every observation and reward of one env (see the module docstring).

    Attributes:
        num_dropped: Steps this env dropped so far.
    """

    def __init__(self, env: gym.Env, mode: str = "drop", env_name: str = "env"):
        super().__init__(env)
        self.mode, self.env_name = mode, env_name
        self.num_dropped = 0
        self._last_obs = None
        self._step = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        found = first_non_finite(obs, "observation")
        if found:
            raise NonFiniteEnvDataError(
                f"Env {self.env_name!r} returned {found[0]}={found[1]} at reset. A reset "
                "observation cannot be dropped; fix the env (e.g. check its initial-state "
                "sampling).")
        self._last_obs, self._step = obs, 0
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        found = first_non_finite(reward, "reward") or first_non_finite(obs, "observation")
        if found is None:
            self._last_obs = obs
            return obs, reward, terminated, truncated, info
        field, value = found
        if self.mode == "raise":
            raise NonFiniteEnvDataError(
                f"Env {self.env_name!r} returned {field}={value} at step {self._step} of an "
                "episode (non_finite_env_data='raise'). Fix the env, or drop such steps with "
                "config.env_runners(non_finite_env_data='drop').")
        if self.num_dropped == 0:
            logger.warning(
                "Env %r returned %s=%s at step %d of an episode: the step is dropped and the "
                "episode ends, truncated, at its last finite step (non_finite_env_data="
                "'drop'). Further drops are counted in env_runners/%s.", self.env_name, field,
                value, self._step, NON_FINITE_ENV_STEPS_KEY)
        self.num_dropped += 1
        # A placeholder step: the last finite observation, no reward, truncated. The env
        # runner cuts it off the episode (GuardedEnvRunner.sample).
        return self._last_obs, 0.0, False, True, {**info, DROPPED_STEP_INFO_KEY: True}


def _guarded_env(env_fn, mode: str, env_name: str) -> gym.Env:
    return NonFiniteGuard(env_fn(), mode, env_name)


def without_dropped_step(episode):
    """The episode chunk without a trailing placeholder step of :class:`NonFiniteGuard`
    (ending truncated at its last finite step), the chunk itself when it has none, or None
    when nothing is left."""
    if len(episode) == 0 or not episode.is_truncated:
        return episode
    info = episode.get_infos(-1)
    if not (isinstance(info, dict) and info.get(DROPPED_STEP_INFO_KEY)):
        return episode
    if len(episode) == 1:
        return None
    kept = episode.slice(slice(0, len(episode) - 1))
    kept.is_truncated = True
    return kept


class GuardedEnvRunner(WholeEpisodeSampling, SingleAgentEnvRunner):
    """RLlib's ``SingleAgentEnvRunner`` with every sub-env wrapped in :class:`NonFiniteGuard`
    (sync and async vector envs) and the guard's placeholder steps cut off the sampled
    episodes; complete episodes are sampled without discarding finished ones
    (:class:`~rllib_ext.core.whole_episodes.WholeEpisodeSampling`). The plugin's configs use it
    by default; a custom env runner class must subclass it."""

    _dropped_reported = 0

    @override(SingleAgentEnvRunner)
    def make_env(self) -> None:
        super().make_env()
        guard = {"mode": self.config.non_finite_env_data, "env_name": str(self.config.env)}
        vector_env = self.env.env  # inside RLlib's DictInfoToList wrapper
        if isinstance(vector_env, SyncVectorEnv):
            vector_env.envs = [NonFiniteGuard(env, **guard) for env in vector_env.envs]
        elif isinstance(vector_env, AsyncVectorEnv):
            # The sub-envs live in worker processes: start them again, wrapped there.
            self.env.env = AsyncVectorEnv(
                [functools.partial(_guarded_env, env_fn, **guard)
                 for env_fn in vector_env.env_fns],
                shared_memory=vector_env.shared_memory, copy=vector_env.copy,
                context=vector_env.context, daemon=vector_env.daemon,
                autoreset_mode=vector_env.autoreset_mode)
            vector_env.close()
        else:
            raise TypeError(f"non_finite_env_data cannot guard a {type(vector_env).__name__}; "
                            "use gym_env_vectorize_mode 'sync' or 'async'.")
        self._dropped_reported = 0

    @override(SingleAgentEnvRunner)
    def _try_env_step(self, actions):
        # RLlib re-raises a failed step as a bare RuntimeError (with restarts off): surface the
        # guard's own error, which names the env, the field and the step.
        try:
            return super()._try_env_step(actions)
        except RuntimeError as error:
            if isinstance(error.__cause__, NonFiniteEnvDataError):
                raise error.__cause__ from None
            raise

    @override(SingleAgentEnvRunner)
    def sample(self, *args, **kwargs):
        episodes = super().sample(*args, **kwargs)
        dropped = int(sum(self.env.env.get_attr("num_dropped")))
        if dropped > self._dropped_reported:
            episodes = [kept for kept in map(without_dropped_step, episodes)
                        if kept is not None]
        # Logged every call (0 too), so the lifetime sum is always in the results.
        self.metrics.log_value(NON_FINITE_ENV_STEPS_KEY, dropped - self._dropped_reported,
                               reduce="sum")
        self._dropped_reported = dropped
        return episodes


class GuardedMultiAgentEnvRunner(WholeEpisodeSampling, MultiAgentEnvRunner):
    """RLlib's ``MultiAgentEnvRunner`` that raises :class:`NonFiniteEnvDataError` on a NaN/inf
    observation or reward of any agent, at reset or step (both modes: see the module
    docstring), and samples complete episodes as :class:`GuardedEnvRunner` does. The plugin's
    multi-agent configs use it; a custom class must subclass it."""

    def _check(self, observations, rewards, when: str) -> None:
        found = first_non_finite(rewards, "reward") or first_non_finite(observations,
                                                                         "observation")
        if found:
            raise NonFiniteEnvDataError(
                f"Multi-agent env {str(self.config.env)!r} returned {found[0]}={found[1]} "
                f"{when} (sub-env index, then agent id). Multi-agent runs stop on non-finite "
                "env data whatever non_finite_env_data says; fix the env.")

    @override(MultiAgentEnvRunner)
    def _try_env_reset(self, *args, **kwargs):
        results = super()._try_env_reset(*args, **kwargs)
        self._check(results[0], None, "at reset")
        return results

    @override(MultiAgentEnvRunner)
    def _try_env_step(self, actions):
        results = super()._try_env_step(actions)
        if isinstance(results, tuple):  # ENV_STEP_FAILURE otherwise
            self._check(results[0], results[1], "at a step")
        return results


class NonFiniteGuardConfig:
    """Mixin for the plugin's ``AlgorithmConfig`` subclasses: the ``non_finite_env_data``
    knob and :class:`GuardedEnvRunner` as the env runner class; and, where the algorithm's
    learner is a :class:`SkipNonFiniteGradients`, RLlib's ``torch_skip_nan_gradients=True``:
    that learner skips a step with a non-finite gradient itself (one fused check, counted), so
    RLlib's own per-tensor checks in ``apply_gradients`` (two passes over every gradient)
    would only repeat it on gradients already known to be finite."""

    #: Whether the algorithm's torch learner skips non-finite gradient steps itself
    #: (:class:`SkipNonFiniteGradients`); False for a learner on RLlib's own checks.
    learner_skips_non_finite_gradients: bool = True

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.non_finite_env_data = "drop"
        self.env_runner_cls = GuardedEnvRunner
        if self.learner_skips_non_finite_gradients:
            self.torch_skip_nan_gradients = True

    def env_runners(self, *, non_finite_env_data=NotProvided, **kwargs):
        """RLlib's ``AlgorithmConfig.env_runners`` plus:

        Args:
            non_finite_env_data: What the env runners do with a NaN/inf observation or reward
                from the env: "drop" (default: drop the step, end the episode truncated at its
                last finite step, count it in ``env_runners/num_non_finite_env_steps_dropped``
                and warn once per env) or "raise" (stop with an error naming the env, the field
                and the step). See :mod:`rllib_ext.core.non_finite`.
            **kwargs: ``AlgorithmConfig.env_runners`` arguments.
        """
        super().env_runners(**kwargs)
        if non_finite_env_data is not NotProvided:
            self.non_finite_env_data = non_finite_env_data
        return self

    def multi_agent(self, **kwargs):
        """RLlib's ``AlgorithmConfig.multi_agent``; a config that becomes multi-agent (or
        single-agent again) switches between the plugin's two guarded env runners, unless the
        user set a class of their own."""
        super().multi_agent(**kwargs)
        if self.env_runner_cls in (GuardedEnvRunner, GuardedMultiAgentEnvRunner):
            self.env_runner_cls = (GuardedMultiAgentEnvRunner if self.is_multi_agent
                                   else GuardedEnvRunner)
        return self

    def validate(self) -> None:
        super().validate()
        self.check_choice("non_finite_env_data", NON_FINITE_MODES, method="env_runners")
        guarded = GuardedMultiAgentEnvRunner if self.is_multi_agent else GuardedEnvRunner
        if not (isinstance(self.env_runner_cls, type)
                and issubclass(self.env_runner_cls, guarded)):
            config_value_error(self,
                f"env_runner_cls={self.env_runner_cls!r} does not guard against non-finite env "
                f"data; subclass rllib_ext.core.non_finite.{guarded.__name__} instead of "
                f"{guarded.__mro__[1].__name__}, or leave env_runner_cls unset.")


def gradients_finite(gradients) -> bool:
    """Whether every gradient tensor (None entries skipped) is finite: one fused check."""
    tensors = [g for g in gradients if g is not None]
    return not tensors or bool(torch.isfinite(torch.stack(foreach_norm(tensors))).all())


class SkipNonFiniteGradients(TorchLearner):
    """Mixin for torch learners: an optimizer step with a NaN/inf gradient is skipped (not
    taken with zeroed gradients, as RLlib's ``apply_gradients`` would) and counted."""

    def count_non_finite_step(self, gradients) -> bool:
        """True when ``gradients`` are finite; otherwise clears the parameters' gradients,
        counts the skipped step and returns False."""
        if gradients_finite(gradients):
            return True
        for param in learner_params(self).values():
            param.grad = None
        self.metrics.log_value((ALL_MODULES, NON_FINITE_GRADIENT_STEPS_KEY), 1, reduce="sum")
        return False

    @override(TorchLearner)
    def apply_gradients(self, gradients_dict) -> None:
        if self.count_non_finite_step(gradients_dict.values()):
            super().apply_gradients(gradients_dict)
