"""Silences Ray's known-harmless start-up chatter so the CLI's own progress lines stay readable.

What is silenced and why it is harmless:
- "You are running <Algo> on the new API stack!": printed by every AlgorithmConfig.validate().
- "RLModule(config=[RLModuleConfig object]) has been deprecated": RLlib's own internal calls.
- "Install gputil for GPU system monitoring." and DeprecationWarnings from Ray internals.
- gymnasium's "Overriding environment rllib-single-agent-env-v0": RLlib re-registers its own
  wrapper id whenever an env runner (e.g. an evaluation one) is built.
- Tune's tabular status reports (replaced by one line per iteration, see progress.py).
Errors are never silenced: Ray and RLlib still log at ERROR level, and trial failures are
printed by the CLI with their message.
"""

from __future__ import annotations

import logging
import os
import warnings

#: RLlib's own log level inside the algorithm and env-runner processes.
RLLIB_LOG_LEVEL = "ERROR"


def quiet_ray() -> None:
    """Call before importing/initialising Ray in the CLI process."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    # With the legacy console reporter, Tune's verbose=0 prints nothing at all (the new engine
    # still prints an experiment banner).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # `evaluate` and `train --gif` build env runners in this process too.
    warnings.filterwarnings("ignore", message=".*Overriding environment rllib-single-agent-env")
    for name in ("ray", "ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_worker() -> None:
    """``worker_process_setup_hook``: the same log levels in every Ray worker process."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*Overriding environment rllib-single-agent-env")
    for name in ("ray", "ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
