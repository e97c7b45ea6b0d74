"""ACE's orchestration, run from RLlib callbacks (installed by ``ACEConfig``). The state lives
in the algorithm (``ACE.causal``, the learners' counters); this callback only decides when.

``on_train_result`` (once per iteration, after the iteration's updates):

1. polls a pending causal fit (``ACE.poll_causal_fit``: ``ray.wait(timeout=0)``, never
   blocks); a finished fit's weights go to every Learner (a dead actor is recreated and the
   fit resubmitted);
2. submits a new fit when one is due (full FIFO, ``causal_update_interval`` new env steps, or
   a fit that was in flight at the checkpoint this run was restored from);
3. soft-resets every ``reset_interval`` gradient updates (``ACE.maybe_reset``: every Learner,
   then the env runners);
4. writes the ``ace`` metrics into the result.

Multi-agent, each trained module goes through 1-3 on its own, and its metrics are under
``result["ace"][module_id]`` (single-agent they are ``result["ace"]`` itself).
"""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback

#: Result key of ACE's metrics (``result["ace"][...]``; TensorBoard: ``ray/tune/ace/...``).
ACE_RESULTS = "ace"


class ACECallback(RLlibCallback):
    """Causal fits, resets and ACE's metrics, once per iteration."""

    def on_train_result(self, *, algorithm, result, **kwargs) -> None:
        # Every module's finished fit first: a dead worker is noticed before any submission.
        for module_id in algorithm.causal:
            algorithm.poll_causal_fit(module_id)
        for module_id in algorithm.causal:
            if algorithm.causal[module_id].fit_due(algorithm.config.causal_update_interval):
                algorithm.submit_causal_fit(module_id)
        metrics = {}
        for module_id, stats in algorithm.learner_ace_stats().items():
            stats = algorithm.maybe_reset(stats, module_id) or stats
            metrics[module_id] = ace_metrics(algorithm.causal[module_id], stats)
        result[ACE_RESULTS] = (next(iter(metrics.values())) if algorithm.causal.single
                               else metrics)


def ace_metrics(state, stats: dict) -> dict:
    """One module's ``ace`` result section: causal weights and fit status (``state``, its
    :class:`~.causal_state.CausalState`), reset and update counters (``stats``, its learner
    counters)."""
    metrics = {f"causal_weight_{i}": float(w) for i, w in enumerate(state.weights)}
    metrics.update({
        "causal_fits": state.num_fits,
        "causal_fallbacks": state.num_fallbacks,
        "causal_fit_s": state.last_fit_s,
        "causal_fit_latency_s": state.last_latency_s,
        "causal_fit_pending": int(state.pending is not None),
        "causal_fit_pending_s": state.pending_seconds(),
        "causal_worker_restarts": state.num_worker_restarts,
        "causal_fifo_size": state.fifo.size,
        **{key: stats[key] for key in ("num_resets", "last_reset_factor", "dormancy_ratio",
                                       "num_gradient_updates", "num_policy_updates")},
    })
    if state.weights_data_step is not None:
        # Env steps between the data behind the current weights and now.
        metrics["causal_weights_staleness_env_steps"] = (
            state.fifo.num_added - state.weights_data_step)
    return metrics
