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
