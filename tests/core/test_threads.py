"""Torch threads of an algorithm's main process: capped at its reserved CPUs inside a Ray actor
(a Tune trial), untouched in a driver script."""

from __future__ import annotations

import pytest
import torch

from rllib_ext import PGConfig
from rllib_ext.core.threads import limit_torch_threads, reserved_main_process_cpus


@pytest.mark.parametrize(
    "resources, learners, expected",
    [
        ({}, {}, 1),  # defaults: 1 main CPU, local learner "auto" = 1 CPU
        ({"num_cpus_for_main_process": 3}, {}, 3),
        ({}, {"num_cpus_per_learner": 2}, 2),  # the local learner's CPUs count when larger
        ({"num_cpus_for_main_process": 0.5}, {}, 1),  # floor, at least 1
        ({"num_cpus_for_main_process": 2}, {"num_learners": 1, "num_cpus_per_learner": 4}, 2),
    ],
)
def test_reserved_main_process_cpus(resources, learners, expected):
    config = PGConfig().resources(**resources).learners(**learners)
    assert reserved_main_process_cpus(config) == expected


def test_limit_torch_threads_caps_only_inside_an_actor(ray_session):
    ray = ray_session
    before = torch.get_num_threads()
    assert limit_torch_threads(PGConfig()) is None  # the driver keeps torch's default
    assert torch.get_num_threads() == before

    @ray.remote(num_cpus=0)
    class Trial:
        def run(self, config, start_threads):
            torch.set_num_threads(start_threads)
            changed = limit_torch_threads(config)
            return changed, torch.get_num_threads()

    trial = Trial.remote()
    assert ray.get(trial.run.remote(PGConfig(), 2)) == (1, 1)
    wide = PGConfig().resources(num_cpus_for_main_process=2)
    assert ray.get(trial.run.remote(wide, 2)) == (None, 2)  # already within the reservation
    ray.kill(trial)
