"""``EvalModeForwards``: an env runner's (inference-only) module switches to eval mode once and
stays there; a full module keeps RLlib's switch and restore; the outputs are RLlib's."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from ray.rllib.core.columns import Columns


def _modules(config):
    spec = config.get_rl_module_spec(env=gym.make("Pendulum-v1"))
    full = spec.build()
    spec.inference_only = True
    return full, spec.build()


@pytest.mark.parametrize("forward", ["forward_exploration", "forward_inference"])
def test_inference_only_module_stays_in_eval_mode(forward):
    from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

    from rllib_ext import ACEConfig

    full, runner = _modules(ACEConfig())
    assert runner.inference_only and runner.training and full.training
    batch = {Columns.OBS: torch.randn(4, 3)}
    calls = []
    original = torch.nn.Module.train

    def counting_train(module, mode=True):
        calls.append((type(module).__name__, mode))
        return original(module, mode)

    torch.nn.Module.train = counting_train
    try:
        ours = getattr(runner, forward)(batch)
        assert not runner.training and not any(m.training for m in runner.modules())
        first = len(calls)
        getattr(runner, forward)(batch)
        assert len(calls) == first  # no more walks over the submodules
        getattr(full, forward)(batch)
        assert full.training  # restored, as RLlib's forward does
    finally:
        torch.nn.Module.train = original
    # The same output as RLlib's own forward.
    rllib = getattr(TorchRLModule, forward)(runner, batch)
    torch.testing.assert_close(ours[Columns.ACTION_DIST_INPUTS], rllib[Columns.ACTION_DIST_INPUTS])
