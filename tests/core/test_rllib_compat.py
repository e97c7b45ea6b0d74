"""Contract tests of ``rllib_ext.core.rllib_compat``: each private Ray name it relies on still
behaves as assumed. A failure here names the accessor that an upgrade broke."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

#: A child process with a clean Ray auth environment: ``ray`` imported first (Ray caches the
#: mode at import), then the variables set, then the accessor.
RELOAD = textwrap.dedent(
    """
    import os
    import ray
    from rllib_ext.core import rllib_compat
    before = rllib_compat.token_auth_enabled()
    os.environ["RAY_AUTH_MODE"] = "token"
    still = rllib_compat.token_auth_enabled()
    rllib_compat.reload_ray_auth_settings()
    print(before, still, rllib_compat.token_auth_enabled())
    """
)

PROBE = textwrap.dedent(
    """
    import sys
    from ray.exceptions import AuthenticationError
    from rllib_ext.core import rllib_compat
    try:
        rllib_compat.check_gcs_accepts_this_process(sys.argv[1])
    except AuthenticationError:
        print("refused")
    else:
        print("accepted")
    """
)


def _env(**auth) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    return {**env, **auth}


def _run(code: str, *args: str, **auth) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(**auth),
                          capture_output=True, text=True, timeout=120)


def test_reload_ray_auth_settings_makes_the_process_follow_the_environment():
    proc = _run(RELOAD, RAY_AUTH_MODE="disabled")
    # Ray caches the mode at import; the accessor's reload is what picks up the change.
    assert proc.stdout.split() == ["False", "False", "True"], proc.stderr[-2000:]


def test_check_gcs_refuses_a_missing_or_wrong_token_and_accepts_the_right_one(ray_session):
    """Against the test session's token-protected instance; the refusal's warning line from
    Ray's C++ client does not reach stderr."""
    address = ray_session.get_runtime_context().gcs_address
    token = os.environ["RAY_AUTH_TOKEN"]
    missing = _run(PROBE, address)
    wrong = _run(PROBE, address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64)
    right = _run(PROBE, address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    assert missing.stdout.split() == ["refused"], missing.stderr[-2000:]
    assert wrong.stdout.split() == ["refused"], wrong.stderr[-2000:]
    assert right.stdout.split() == ["accepted"], right.stderr[-2000:]
    assert "Failed to get cluster ID" not in missing.stderr + wrong.stderr


def test_foreach_norm_gives_each_tensors_l2_norm():
    import torch

    from rllib_ext.core import rllib_compat

    norms = rllib_compat.foreach_norm([torch.tensor([3.0, 4.0]),
                                       torch.tensor([[1.0], [float("inf")]])])
    assert [n.item() for n in norms] == [5.0, float("inf")]


def test_foreach_lerp_moves_each_target_towards_its_source_in_place():
    import torch

    from rllib_ext.core import rllib_compat

    targets = [torch.zeros(2), torch.ones(1)]
    first = targets[0]
    rllib_compat.foreach_lerp_(targets, [torch.tensor([1.0, 2.0]), torch.tensor([3.0])], 0.25)
    assert first is targets[0] and first.tolist() == [0.25, 0.5]
    assert targets[1].tolist() == [1.5]


# -- RLlib accessors -----------------------------------------------------------------------------


def _pg_learner():
    import gymnasium as gym

    from rllib_ext import PGConfig

    config = (PGConfig().environment("CartPole-v1")
              .rl_module(model_config={"fcnet_hiddens": [4]}).debugging(seed=0))
    return config, config.build_learner(env=gym.make("CartPole-v1"))


def test_config_accessors():
    import pytest

    from rllib_ext import PGConfig
    from rllib_ext.core import rllib_compat

    config = PGConfig().rl_module(model_config={"fcnet_hiddens": [3]})
    with pytest.raises(ValueError, match="the offending value and the fix"):
        rllib_compat.config_value_error(config, "the offending value and the fix")
    assert rllib_compat.user_model_config(config) == {"fcnet_hiddens": [3]}
    assert rllib_compat.main_process_bundle(config)["CPU"] >= 1


def test_tune_env_registered():
    from ray.tune.registry import register_env

    from rllib_ext.core import rllib_compat

    assert not rllib_compat.tune_env_registered("rllib_compat_test/Nothing-v0")
    register_env("rllib_compat_test/Nothing-v0", lambda cfg: None)
    assert rllib_compat.tune_env_registered("rllib_compat_test/Nothing-v0")


def test_env_creator_builds_registered_names_and_gymnasium_ids():
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.env_context import EnvContext

    from rllib_ext.core import rllib_compat

    for env, expected in (("rllib_ext/Platform-v0", "PlatformEnv"), ("CartPole-v1", "CartPoleEnv")):
        made = rllib_compat.env_creator(AlgorithmConfig().environment(env))(EnvContext({}, 0))
        try:
            assert type(made.unwrapped).__name__ == expected
        finally:
            made.close()


def test_learner_accessors():
    import torch

    from rllib_ext.core import rllib_compat

    config, learner = _pg_learner()
    params = rllib_compat.learner_params(learner)
    module = learner.module["default_policy"].unwrapped()
    assert {id(p) for p in params.values()} == {id(p) for p in module.parameters()}
    optimizers = list(rllib_compat.learner_optimizers(learner))
    assert optimizers and all(isinstance(o, torch.optim.Optimizer) for o in optimizers)
    grads = {pid: torch.full_like(p, 10.0) for pid, p in params.items()}
    rllib_compat.clip_function(learner)(grads, grad_clip=1.0, grad_clip_by="global_norm")
    assert torch.sqrt(sum((g ** 2).sum() for g in grads.values())).item() <= 1.0 + 1e-5
    assert rllib_compat.learner_device(learner) == torch.device("cpu")
    assert "default_policy" in rllib_compat.learner_module_spec(learner).module_specs
    before = learner._weights_seq_no
    rllib_compat.bump_weights_seq_no(learner)
    assert learner._weights_seq_no == before + 1
    assert rllib_compat.wants_component(learner, "rl_module", None, None)
    assert not rllib_compat.wants_component(learner, "rl_module", None, ["rl_module"])
    assert rllib_compat.local_learner(learner_group_of(learner)) is learner
    assert rllib_compat.weights_seq_no(learner) == learner._weights_seq_no


def learner_group_of(learner):
    """A stand-in ``LearnerGroup`` holding ``learner`` as a local group does."""
    from ray.rllib.core.learner.learner_group import LearnerGroup

    group = LearnerGroup.__new__(LearnerGroup)
    group._learner = learner
    return group


def test_env_runner_weights_seq_no():
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    from rllib_ext import PGConfig
    from rllib_ext.core import rllib_compat

    runner = SingleAgentEnvRunner(config=PGConfig().environment("CartPole-v1"))
    try:
        rllib_compat.set_env_runner_weights_seq_no(runner, 7)
        assert rllib_compat.weights_seq_no(runner) == 7
        assert runner.get_state()[WEIGHTS_SEQ_NO] == 7
    finally:
        runner.stop()


def test_alias_module_tensors():
    import torch

    from rllib_ext.core import rllib_compat

    def net():
        module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        module.register_buffer("scratch", torch.zeros(2), persistent=False)
        return module

    source, target = net(), net()
    source_tensors = source.state_dict(keep_vars=True)
    assert rllib_compat.alias_module_tensors(source, target)
    for name, tensor in target.state_dict(keep_vars=True).items():
        assert tensor is source_tensors[name], name
    assert isinstance(target[0].weight, torch.nn.Parameter)
    assert target.scratch is not source.scratch  # not in the state dict: left alone
    # An optimizer step on the source moves the target's weights too.
    before = target[0].weight.detach().clone()
    source[0].weight.grad = torch.ones_like(source[0].weight)
    torch.optim.SGD(source.parameters(), lr=0.5).step()
    assert torch.equal(target[0].weight, before - 0.5)
    # A part the source lacks, or has with another shape: refused, the target untouched.
    wider, keep = torch.nn.Sequential(torch.nn.Linear(3, 5)), net()
    before = {k: v for k, v in keep.state_dict(keep_vars=True).items()}
    assert not rllib_compat.alias_module_tensors(wider, keep)
    assert all(v is before[k] for k, v in keep.state_dict(keep_vars=True).items())
    assert not rllib_compat.alias_module_tensors(torch.nn.Sequential(torch.nn.Linear(3, 4)),
                                                 net())


def test_catalog_model_config():
    import gymnasium as gym

    from rllib_ext import ACEConfig
    from rllib_ext.core import rllib_compat

    module = (ACEConfig().rl_module(model_config={"fcnet_hiddens": [5]})
              .get_rl_module_spec(env=gym.make("Pendulum-v1")).build())
    assert rllib_compat.catalog_model_config(module.catalog)["fcnet_hiddens"] == [5]


def test_private_rllib_methods_that_are_called_or_overridden_exist():
    """The env-runner group's internals (exercised end to end by
    tests/core/test_env_runner_faults.py) and the private methods rllib_ext overrides."""
    import inspect

    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import (
        DefaultSACTorchRLModule,
    )
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner
    from ray.rllib.env.env_runner import EnvRunner
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    def parameters(function):
        return set(inspect.signature(function).parameters)

    assert {"env_creator", "validate_env", "worker_index", "num_workers", "recreated_worker",
            "config"} <= parameters(EnvRunnerGroup._make_worker)
    assert {"config", "env_runner_group", "restored_env_runner_indices"} <= parameters(
        Algorithm._make_on_env_runners_recreated_callbacks)
    assert {"batch"} <= parameters(TorchLearner._compute_off_policyness)
    assert {"batch"} <= parameters(TorchLearner._update)
    assert {"batch"} <= parameters(TorchLearner._uncompiled_update)
    from ray.rllib.core.learner.learner import Learner

    from rllib_ext.core.rllib_compat import LEARNER_UPDATE_WITHOUT_REDUCE

    assert set(LEARNER_UPDATE_WITHOUT_REDUCE) <= parameters(Learner.update)
    assert {"actions"} <= parameters(EnvRunner._try_env_step)
    assert {"batch", "encoder", "head", "squeeze"} <= parameters(
        DefaultSACTorchRLModule._qf_forward_train_helper)
    assert {"batch"} <= parameters(DefaultSACTorchRLModule._forward_train_continuous)
    assert {"framework"} <= parameters(SACCatalog._build_qf_encoder_continuous)
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    assert isinstance(AlgorithmConfig.__dict__["_model_config_auto_includes"], property)
