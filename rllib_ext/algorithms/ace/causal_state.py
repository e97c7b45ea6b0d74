"""ACE's causal state in one place: :class:`CausalState` (owned by the algorithm, checkpointed
with it) and the :class:`CausalWorker` actor that runs the fits off the training loop.

The state holds the FIFO of recent transitions, the current weights, the fit counters and the
fit in flight. A checkpoint stores everything but the in-flight ObjectRef: a fit that was
pending when the checkpoint was taken is resubmitted on restore (on the restored FIFO).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from rllib_ext.algorithms.ace.causal import CausalFit, TransitionFIFO, fit_causal_weights

logger = logging.getLogger(__name__)

#: Seconds a fit may stay pending before ACE warns that its worker cannot be scheduled or
#: starves (a fit at HalfCheetah size takes well under a second with the fast backend).
PENDING_WARNING_S = 300.0


def run_fit(obs, actions, rewards, options: dict, delay_s: float = 0.0) -> CausalFit:
    """One :func:`~.causal.fit_causal_weights`; ``delay_s`` sleeps first (test option: a
    deliberately slow fit). What both the actor and ACE's synchronous path run."""
    if delay_s > 0:
        time.sleep(delay_s)
    return fit_causal_weights(obs, actions, rewards, **options)


class CausalWorker:
    """Runs :func:`~.causal.fit_causal_weights` in its own process (a Ray actor, see
    :func:`create_causal_worker`), so a DirectLiNGAM fit never blocks a training iteration.

    Ray starts worker processes at niceness 15 (``RAY_worker_niceness``); under load such a
    fit starves behind a training process at 0. The worker moves itself to ``niceness`` (the
    creating process's) where the OS allows it, and caps numpy's and torch's threads at
    ``num_threads`` so the fit uses the CPUs it reserved, not the learner's.
    """

    def __init__(self, niceness: int, num_threads: int):
        self.num_threads = int(num_threads)
        self.priority_error = None
        try:
            os.setpriority(os.PRIO_PROCESS, 0, int(niceness))
        except (PermissionError, OSError) as e:  # lowering niceness needs CAP_SYS_NICE
            self.priority_error = f"{type(e).__name__}: {e}"
        import torch

        torch.set_num_threads(self.num_threads)

    def info(self) -> dict:
        """The process's niceness, its thread cap and why raising its priority failed."""
        return {"niceness": os.getpriority(os.PRIO_PROCESS, 0), "num_threads": self.num_threads,
                "priority_error": self.priority_error}

    def fit(self, obs, actions, rewards, options: dict, delay_s: float = 0.0) -> CausalFit:
        """:func:`run_fit` within this worker's thread cap."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.num_threads):
            return run_fit(obs, actions, rewards, options, delay_s)


def create_causal_worker(num_cpus: float, num_threads: int):
    """A :class:`CausalWorker` actor reserving ``num_cpus`` (under Tune the reservation is a
    bundle of the trial's placement group, see ``ACE.default_resource_request``), at the
    creating process's priority, with no automatic restart (ACE notices a dead actor and
    creates a new one)."""
    import ray

    worker = ray.remote(num_cpus=num_cpus, max_restarts=0)(CausalWorker).remote(
        os.getpriority(os.PRIO_PROCESS, 0), num_threads)
    return worker


class CausalState:
    """Everything ACE knows about causality (see the module docstring).

    Attributes:
        fifo: The last ``causal_sample_size`` transitions (s, a, r) seen by the replay.
        weights: Current weights (A,), ones until the first fit.
        num_fits, num_fallbacks, last_fallback, last_fit_s: Fit counters and the last fit's
            time inside the worker.
        last_latency_s: Submission -> weights in the learners, of the last fit.
        weights_data_step: FIFO step count of the data behind ``weights`` (None before).
        last_submitted_step: FIFO step count of the last submitted fit (None before).
        num_worker_restarts: Causal workers recreated after dying.
        pending, pending_step, pending_since: The fit in flight (ObjectRef, its data step,
            its submission time), not checkpointed.
    """

    _CHECKPOINTED = ("weights", "num_fits", "num_fallbacks", "last_fallback", "last_fit_s",
                     "last_latency_s", "weights_data_step", "last_submitted_step",
                     "num_worker_restarts")

    def __init__(self, sample_size: int, obs_dim: int, action_dim: int):
        self.fifo = TransitionFIFO(sample_size, obs_dim, action_dim)
        self.weights = np.ones(action_dim)
        self.num_fits = 0
        self.num_fallbacks = 0
        self.last_fallback: str | None = None
        self.last_fit_s = float("nan")
        self.last_latency_s = float("nan")
        self.weights_data_step: int | None = None
        self.last_submitted_step: int | None = None
        self.num_worker_restarts = 0
        self.pending = None
        self.pending_step: int | None = None
        self.pending_since: float | None = None
        self._previous_submitted_step: int | None = None
        self._warned_pending = False
        self._resubmit = False

    def fit_due(self, interval: int) -> bool:
        """A full FIFO and ``interval`` new steps since the last submitted fit (or a fit that
        was in flight at the checkpoint this state was restored from); never if ``interval``
        is 0."""
        last = self.last_submitted_step
        return interval > 0 and self.fifo.full and (self._resubmit or last is None
                                   or self.fifo.num_added - last >= interval)

    def mark_submitted(self, pending=None) -> int:
        """Records a submission of the FIFO's current data; returns its step count."""
        step = self.fifo.num_added
        self._previous_submitted_step = self.last_submitted_step
        self.last_submitted_step = step
        self.pending, self.pending_step = pending, step
        self.pending_since = time.perf_counter()
        self._warned_pending = False
        self._resubmit = False
        return step

    def record_fit(self, fit: CausalFit) -> np.ndarray:
        """Takes a finished fit's weights (uniform ones on a fallback); returns them."""
        self.num_fits += 1
        self.last_fit_s = fit.fit_seconds
        self.last_latency_s = time.perf_counter() - self.pending_since
        self.weights_data_step = self.pending_step
        if fit.fallback:
            self.num_fallbacks += 1
            self.last_fallback = fit.fallback
            logger.warning("ACE causal fit fell back to uniform weights (%s).", fit.fallback)
        self.weights = np.asarray(fit.weights, dtype=np.float64)
        self.pending = self.pending_step = self.pending_since = None
        return self.weights

    def record_worker_death(self) -> None:
        """The worker died with the fit in flight: the fit is due again at once."""
        logger.warning("ACE's causal worker died; recreating it and refitting.")
        self.num_worker_restarts += 1
        self.last_submitted_step = self._previous_submitted_step
        self.pending = self.pending_step = self.pending_since = None
        self._resubmit = True

    def pending_seconds(self) -> float:
        """Seconds the fit in flight has been pending (0 if none); warns once past
        :data:`PENDING_WARNING_S`."""
        if self.pending_since is None:
            return 0.0
        waited = time.perf_counter() - self.pending_since
        if waited > PENDING_WARNING_S and not self._warned_pending:
            self._warned_pending = True
            logger.warning(
                "ACE's causal fit has been pending for %.0f s: its worker may not get the "
                "CPUs it reserves (causal_worker_num_cpus) on this cluster; training goes on "
                "with the previous weights. Lower config.training(causal_worker_num_cpus=...) "
                "or add CPUs.", waited)
        return waited

    def get_state(self) -> dict:
        state = {name: getattr(self, name) for name in self._CHECKPOINTED}
        state["fifo"] = self.fifo.get_state()
        state["fit_in_flight"] = self.pending_step is not None or self._resubmit
        return state

    def set_state(self, state: dict) -> None:
        self.fifo.set_state(state["fifo"])
        for name in self._CHECKPOINTED:
            setattr(self, name, state[name])
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.pending = self.pending_step = self.pending_since = None
        # A fit in flight at the checkpoint is lost with its process: submit it again.
        self._resubmit = bool(state["fit_in_flight"])
