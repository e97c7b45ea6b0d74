"""Synchronous sampling from the env runners that fails fast when they are lost.

RLlib's ``synchronous_parallel_sample`` returns nothing once no remote env runner is healthy,
and ``Algorithm._run_one_training_iteration`` calls ``training_step`` again until
``min_sample_timesteps_per_iteration`` is reached: with a dead env runner that Ray does not
restart (restarts off, or killed for good, e.g. ``ray.kill``), ``train()`` never returns.
:func:`sample_env_runners` is the one sampling call of every rllib_ext training step:

* Restarts off (``config.fault_tolerance(restart_failed_env_runners=False)``): a lost env runner
  raises :class:`EnvRunnersLostError` naming the fix, at once (the sample's own error) or, with
  ``ignore_env_runner_failures=True``, once no healthy env runner is left.
* Restarts on: a permanently dead env runner (its health ping fails with ``ActorDiedError``) is
  replaced by a new actor with the same index, which ``Algorithm.restore_env_runners`` brings
  into service with the current weights and connector states right away (as RLlib's training
  loop does before each ``training_step``), and the round samples again. Sampling rounds
  without any healthy env runner are counted; more than
  ``num_consecutive_env_runner_failures_tolerance`` in a row raise, and so do more than
  ``max_num_env_runner_restarts`` replacements in all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ray
from ray.exceptions import ActorDiedError, RayActorError
from ray.rllib.env.env_runner_group import EnvRunnerGroup
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

from rllib_ext.core.rllib_compat import (
    env_runner_manager,
    make_replacement_env_runner,
    run_env_runners_recreated_callbacks,
)

logger = logging.getLogger(__name__)

RESTARTS_FIX = "config.fault_tolerance(restart_failed_env_runners=True)"


class EnvRunnersLostError(RuntimeError):
    """The algorithm's remote env runners are lost and cannot be brought back."""


@dataclass
class _EnvRunnerFaults:
    rounds_without_env_runners: int = 0  # consecutive sampling rounds with none healthy
    replaced: int = 0  # env runners replaced by new actors, in all


def sample_env_runners(algo, *, max_env_steps: int | None = None) -> tuple[list, list[dict]]:
    """``synchronous_parallel_sample`` on ``algo.env_runner_group`` (episodes, concatenated,
    and the env runners' metrics) that never spins on lost env runners (module docstring).

    Returns ``([], [])`` for a round in which no remote env runner is healthy while the lost
    ones are being replaced.
    """
    group = algo.env_runner_group
    if not check_env_runners(algo):
        return [], []
    episodes, env_runner_results = _sample(algo, max_env_steps)
    if group.num_healthy_remote_env_runners() < group.num_remote_env_runners():
        # Lost during this round: replace them now (or raise), and sample again if the
        # round got nothing, rather than end the iteration empty.
        if check_env_runners(algo, count_round=False) and not episodes:
            episodes, env_runner_results = _sample(algo, max_env_steps)
    return episodes, env_runner_results


def _sample(algo, max_env_steps: int | None) -> tuple[list, list[dict]]:
    try:
        return synchronous_parallel_sample(
            worker_set=algo.env_runner_group, max_env_steps=max_env_steps, concat=True,
            sample_timeout_s=algo.config.sample_timeout_s, _uses_new_env_runners=True,
            _return_metrics=True)
    except RayActorError as e:  # restarts and ignore_env_runner_failures off: RLlib re-raises
        raise EnvRunnersLostError(
            f"An env runner of {type(algo).__name__} died while sampling ({type(e).__name__}: "
            f"{str(e).splitlines()[0]}) and failed env runners are not restarted. Set "
            f"`{RESTARTS_FIX}` to replace failed env runners (or "
            "`ignore_env_runner_failures=True` to go on with the healthy ones)."
        ) from e


def check_env_runners(algo, *, count_round: bool = True) -> bool:
    """Whether a remote env runner is healthy to sample from (always True without remote env
    runners). With restarts on, replaces the dead ones first; raises
    :class:`EnvRunnersLostError` when none is healthy and none can come back (restarts off),
    or after too many rounds without one or too many replacements (restarts on)."""
    group = algo.env_runner_group
    num_remote = group.num_remote_env_runners()
    faults = algo.__dict__.setdefault("_env_runner_faults", _EnvRunnerFaults())
    if num_remote == 0 or group.num_healthy_remote_env_runners() == num_remote:
        faults.rounds_without_env_runners = 0
        return True
    cfg = algo.config
    name = type(algo).__name__
    if cfg.restart_failed_env_runners:
        replaced = replace_dead_env_runners(
            group, ping_timeout_s=cfg.env_runner_health_probe_timeout_s)
        faults.replaced += len(replaced)
        if faults.replaced > cfg.max_num_env_runner_restarts:
            raise EnvRunnersLostError(
                f"{name} replaced dead env runners {faults.replaced} times, more than "
                f"`max_num_env_runner_restarts={cfg.max_num_env_runner_restarts}`: they keep "
                "dying. Check the env runners' errors in the Ray logs, or raise "
                "`config.fault_tolerance(max_num_env_runner_restarts=...)`."
            )
        if replaced:
            _restore_env_runners(algo)
    if group.num_healthy_remote_env_runners() > 0:
        faults.rounds_without_env_runners = 0
        return True
    if not cfg.restart_failed_env_runners:
        raise EnvRunnersLostError(
            f"No healthy env runner left: all {num_remote} remote env runner(s) of {name} "
            "failed and failed env runners are not restarted. Set "
            f"`{RESTARTS_FIX}` to replace them."
        )
    if count_round:
        faults.rounds_without_env_runners += 1
        tolerance = cfg.num_consecutive_env_runner_failures_tolerance
        if faults.rounds_without_env_runners > tolerance:
            raise EnvRunnersLostError(
                f"No healthy env runner in {faults.rounds_without_env_runners} consecutive "
                f"sampling rounds of {name} (more than `num_consecutive_env_runner_failures_"
                f"tolerance={tolerance}`): the {num_remote} remote env runner(s) could not be "
                "restored. Check the env runners' errors in the Ray logs and that the cluster "
                "has resources for them."
            )
    return False


def _restore_env_runners(algo) -> None:
    """What ``Algorithm._run_one_training_iteration`` does before each ``training_step``:
    brings the env runners that answer their ping back into service with the current state,
    and fires the ``on_env_runners_recreated`` callbacks for them."""
    restored = algo.restore_env_runners(algo.env_runner_group)
    if restored:
        run_env_runners_recreated_callbacks(algo, restored)


def replace_dead_env_runners(group: EnvRunnerGroup, *, ping_timeout_s: float) -> list[int]:
    """Replaces the unhealthy remote env runners that are dead for good by new actors with the
    same index, still marked unhealthy until ``Algorithm.restore_env_runners`` pings them, syncs
    their state and puts them into service. An env runner is dead for good when a new health
    ping fails with ``ActorDiedError`` (Ray queues calls to an actor it is restarting). Returns
    the replaced indices."""
    manager = env_runner_manager(group)
    unhealthy = [i for i in manager.actor_ids() if not manager.is_actor_healthy(i)]
    if not unhealthy:
        return []
    pings = manager.foreach_actor(lambda actor: actor.ping(), remote_actor_ids=unhealthy,
                                  healthy_only=False, timeout_seconds=ping_timeout_s)
    dead = [r.actor_id for r in pings if not r.ok and isinstance(r.get(), ActorDiedError)]
    actors = manager.actors()  # {index: handle}; indices start at 1, as the worker indices
    for index in dead:
        ray.kill(actors[index])  # never let Ray bring the old one back beside the new one
        actors[index] = make_replacement_env_runner(group, index)
        logger.warning(f"Env runner {index} died; replaced it by a new one.")
    return dead
