"""Interrupting a CLI run the way a user's Ctrl-C does, at a chosen iteration."""

from __future__ import annotations

import os
import signal


def interrupt_at_iteration(monkeypatch, at: int) -> None:
    """The CLI's progress printer sends SIGINT once, on the first result of iteration ``at``."""
    from rllib_ext.cli.progress import ProgressPrinter

    original = ProgressPrinter.on_trial_result
    state = {"armed": True}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        original(self, iteration, trials, trial, result, **info)
        if state["armed"] and result["training_iteration"] == at:
            state["armed"] = False
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ProgressPrinter, "on_trial_result", on_trial_result)
