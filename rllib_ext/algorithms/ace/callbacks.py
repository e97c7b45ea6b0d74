"""ACE's driver-side machinery, run from RLlib callbacks (installed by ``ACEConfig``).

``on_algorithm_init``: creates the :class:`~.causal.CausalWorker` actor (``causal_async``).

``on_train_result`` (once per iteration, after the iteration's updates):

1. polls a pending causal fit with ``ray.wait(timeout=0)`` - never blocks; a finished fit's
   weights are pushed to every Learner (a dead actor is recreated and the fit resubmitted);
2. submits a new fit when one is due (full FIFO, ``causal_update_interval`` new env steps);
3. decides a soft reset every ``reset_interval`` gradient updates, applies it on every Learner
   and re-syncs the env runners (the Learner bumps its weights sequence number, otherwise the
   env runners would ignore the sync);
4. writes the ``ace`` metrics into the result.
"""

from __future__ import annotations

import logging

import numpy as np
import ray
from ray.exceptions import RayActorError
from ray.rllib.callbacks.callbacks import RLlibCallback

from rllib_ext.algorithms.ace.causal import (
    CausalFit,
    create_causal_worker,
    fit_causal_weights,
)
from rllib_ext.algorithms.ace.dormancy import causal_perturb_factor, perturb_factor

logger = logging.getLogger(__name__)

#: Result key of ACE's metrics (``result["ace"][...]``; TensorBoard: ``ray/tune/ace/...``).
ACE_RESULTS = "ace"
CAUSAL_VARIANTS = ("causal_reset", "causal_dormant_reset")


def _first(results):
    """The first Learner's return value from ``learner_group.foreach_learner`` (all Learners
    hold the same state; raises the Learner's error, if any)."""
    return next(iter(results)).get()


class ACECallback(RLlibCallback):
    """Causal fits (asynchronous or synchronous), resets and ACE's metrics."""

    def __init__(self):
        super().__init__()
        self.worker = None
        self._pending = None  # ObjectRef of the running fit
        self._pending_step = None  # FIFO step count of its data
        self._previous_submitted_step = None

    def on_algorithm_init(self, *, algorithm, **kwargs) -> None:
        if algorithm.config.causal_async:
            self.worker = create_causal_worker()

    def on_train_result(self, *, algorithm, result, **kwargs) -> None:
        self._collect_fit(algorithm)
        if algorithm.causal_fit_due():
            self._submit_fit(algorithm)
        stats = _first(algorithm.learner_group.foreach_learner(lambda learner: learner.ace_stats()))
        stats = self._maybe_reset(algorithm, stats) or stats
        result[ACE_RESULTS] = self._metrics(algorithm, stats)

    # -- causal fits ------------------------------------------------------------------------

    def _options(self, algorithm) -> dict:
        return {"transform": algorithm.config.causal_weight_transform,
                "random_state": algorithm.config.seed}

    def _submit_fit(self, algorithm) -> None:
        cfg, status = algorithm.config, algorithm.causal_status
        obs, actions, rewards = algorithm.causal_fifo.arrays()
        step = algorithm.causal_fifo.num_added
        self._previous_submitted_step = status["last_submitted_step"]
        status["last_submitted_step"] = step
        if not cfg.causal_async:
            if cfg._causal_fit_delay_s > 0:
                import time

                time.sleep(cfg._causal_fit_delay_s)
            self._apply_fit(algorithm, fit_causal_weights(obs, actions, rewards,
                                                          **self._options(algorithm)), step)
            return
        if self.worker is None:
            self.worker = create_causal_worker()
        self._pending = self.worker.fit.remote(obs, actions, rewards, self._options(algorithm),
                                               cfg._causal_fit_delay_s)
        self._pending_step = step

    def _collect_fit(self, algorithm) -> None:
        if self._pending is None:
            return
        ready, _ = ray.wait([self._pending], timeout=0)
        if not ready:
            return
        try:
            fit = ray.get(ready[0])
        except RayActorError:
            # The actor died (killed, OOM, node loss): start a new one; the fit is due again
            # at once (same submission step as before this one).
            logger.warning("ACE's causal worker died; recreating it and refitting.")
            algorithm.causal_status["num_worker_restarts"] += 1
            algorithm.causal_status["last_submitted_step"] = self._previous_submitted_step
            self.worker = create_causal_worker()
        else:
            self._apply_fit(algorithm, fit, self._pending_step)
        finally:
            self._pending = None

    @staticmethod
    def _apply_fit(algorithm, fit: CausalFit, data_step: int) -> None:
        status = algorithm.causal_status
        status["num_fits"] += 1
        status["last_fit_s"] = fit.fit_seconds
        status["weights_data_step"] = data_step
        if fit.fallback:
            status["num_fallbacks"] += 1
            status["last_fallback"] = fit.fallback
            logger.warning("ACE causal fit fell back to uniform weights (%s).", fit.fallback)
        weights = np.asarray(fit.weights, dtype=np.float64)
        status["weights"] = weights
        algorithm.learner_group.foreach_learner(
            lambda learner, w=weights: learner.set_causal_weights(w)
        )

    # -- resets -----------------------------------------------------------------------------

    @staticmethod
    def _maybe_reset(algorithm, stats: dict) -> dict | None:
        cfg = algorithm.config
        if cfg.reset_variant == "none":
            return None
        if stats["num_gradient_updates"] - stats["last_reset_update"] < cfg.reset_interval:
            return None
        low, high = cfg.perturb_factor_min, cfg.perturb_factor_max
        if cfg.reset_variant in CAUSAL_VARIANTS:
            factor = causal_perturb_factor(algorithm.causal_status["weights"], low, high)
        else:
            factor = perturb_factor(stats["dormancy_ratio"], low, high)
        # One seed for every learner: their fresh initialisations (and so their weights after
        # the reset) must be identical.
        seed = int(np.random.SeedSequence(
            [cfg.seed if cfg.seed is not None else np.random.randint(2**31), stats["num_resets"]]
        ).generate_state(1)[0])
        results = algorithm.learner_group.foreach_learner(
            lambda learner, f=factor, s=seed: (learner.soft_reset(f, s), learner.ace_stats())[1]
        )
        # RLlib's sync is fire-and-forget and drops the call while the iteration's own
        # `set_state` is still in flight (one request per runner); a timeout makes it wait
        # for that one first, so the reset weights are always queued on every runner.
        algorithm.env_runner_group.sync_weights(
            from_worker_or_learner_group=algorithm.learner_group, inference_only=True,
            timeout_seconds=cfg.env_runner_health_probe_timeout_s,
        )
        return _first(results)

    # -- metrics ----------------------------------------------------------------------------

    def _metrics(self, algorithm, stats: dict) -> dict:
        status = algorithm.causal_status
        metrics = {f"causal_weight_{i}": float(w) for i, w in enumerate(status["weights"])}
        metrics.update({
            "causal_fits": status["num_fits"],
            "causal_fallbacks": status["num_fallbacks"],
            "causal_fit_s": status["last_fit_s"],
            "causal_fit_pending": int(self._pending is not None),
            "causal_worker_restarts": status["num_worker_restarts"],
            "causal_fifo_size": algorithm.causal_fifo.size,
            "num_resets": stats["num_resets"],
            "last_reset_factor": stats["last_reset_factor"],
            "dormancy_ratio": stats["dormancy_ratio"],
            "num_gradient_updates": stats["num_gradient_updates"],
            "num_policy_updates": stats["num_policy_updates"],
        })
        if status["weights_data_step"] is not None:
            # Env steps between the data behind the current weights and now.
            metrics["causal_weights_staleness_env_steps"] = (
                algorithm.causal_fifo.num_added - status["weights_data_step"]
            )
        return metrics
