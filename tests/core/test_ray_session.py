"""The token handling of ``rllib_ext.core.ray_session`` without starting Ray: what the embedded
instance gets in its environment and what comes back afterwards, when a cluster token is sent,
and the one-line refusal. (The instances themselves: tests/cli/test_ray_auth.py.)"""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import pytest
import ray
from ray.exceptions import AuthenticationError

from rllib_ext.core import ray_session, rllib_compat
from rllib_ext.core.ray_session import MODE_ENV, TOKEN_ENV, TOKEN_PATH_ENV

AUTH = (MODE_ENV, TOKEN_ENV, TOKEN_PATH_ENV)


@pytest.fixture
def fake_ray(monkeypatch):
    """ray.init / shutdown and the auth reload recorded, not run (the test session's Ray and
    this process's Ray auth settings stay as they are). Yields the list of the environments
    ``ray.init`` saw; the caller's RAY_AUTH_* start as the test sets them."""
    seen = []
    reloads = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(
        {"kwargs": kwargs, **{name: os.environ.get(name) for name in AUTH}}))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(gcs_address="h:1"))
    monkeypatch.setattr(rllib_compat, "reload_ray_auth_settings", lambda: reloads.append(1))
    # What the test session's own instance saved stays aside.
    monkeypatch.setattr(ray_session, "_saved_env", None)
    for name in AUTH:
        monkeypatch.delenv(name, raising=False)
    return SimpleNamespace(seen=seen, reloads=reloads)


def test_each_embedded_instance_gets_a_fresh_256_bit_token_only_in_the_environment(
        fake_ray, monkeypatch, tmp_path):
    monkeypatch.setenv(MODE_ENV, "disabled")
    monkeypatch.setenv(TOKEN_ENV, "the-users-cluster-token")
    monkeypatch.setenv(TOKEN_PATH_ENV, "/somewhere/token")
    monkeypatch.setenv("HOME", str(tmp_path))
    tokens = []
    for _ in range(2):
        assert ray_session.init_local_ray(num_cpus=1) == "h:1"
        run = fake_ray.seen[-1]
        assert run["kwargs"] == {"address": "local", "num_cpus": 1}
        # The user's RAY_AUTH_MODE=disabled does not switch the protection off.
        assert run[MODE_ENV] == "token" and run[TOKEN_PATH_ENV] is None
        assert re.fullmatch(r"[0-9a-f]{64}", run[TOKEN_ENV])
        tokens.append(run[TOKEN_ENV])
        ray_session.shutdown_local_ray()
        # The caller's variables come back, and Ray's cached settings are reloaded for them.
        assert [os.environ.get(name) for name in AUTH] == [
            "disabled", "the-users-cluster-token", "/somewhere/token"]
    assert tokens[0] != tokens[1]
    assert fake_ray.reloads  # Ray reads the mode once per process unless told to reload
    assert not (tmp_path / ".ray").exists()


def test_a_failed_start_restores_the_environment(fake_ray, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("no room")

    monkeypatch.setattr(ray, "init", fail)
    with pytest.raises(RuntimeError, match="no room"):
        ray_session.init_local_ray()
    assert all(os.environ.get(name) is None for name in AUTH)


def test_init_local_ray_refuses_an_address_and_a_running_ray(fake_ray, monkeypatch):
    with pytest.raises(TypeError, match="always starts a new local instance"):
        ray_session.init_local_ray(address="10.0.0.1:6379")
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="already initialised"):
        ray_session.init_local_ray()
    assert not fake_ray.seen


@pytest.mark.parametrize("given, mode", [
    ({}, None),                                              # no token: nothing changes
    ({TOKEN_ENV: "t"}, "token"),                             # a token: sent
    ({TOKEN_PATH_ENV: "FILE"}, "token"),                     # a token file: sent
    ({TOKEN_ENV: "t", MODE_ENV: "disabled"}, "disabled"),    # an explicit mode is kept
])
def test_use_cluster_token_turns_token_mode_on_when_a_token_is_given(
        fake_ray, monkeypatch, tmp_path, given, mode):
    token_file = tmp_path / "token"
    token_file.write_text("t\n")
    for name, value in given.items():
        monkeypatch.setenv(name, str(token_file) if value == "FILE" else value)
    ray_session.use_cluster_token()
    assert os.environ.get(MODE_ENV) == mode
    assert bool(fake_ray.reloads) == (mode == "token" and MODE_ENV not in given)


@pytest.mark.parametrize("content, expected", [
    (None, r"RAY_AUTH_TOKEN_PATH=\S+ cannot be read \(No such file or directory\)"),
    ("  \n", r"RAY_AUTH_TOKEN_PATH=\S+ is empty"),
])
def test_an_unusable_token_file_is_one_line_with_the_fix(fake_ray, monkeypatch, tmp_path,
                                                         content, expected):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(TOKEN_PATH_ENV, str(path))
    with pytest.raises(ray_session.ClusterAuthError) as caught:
        ray_session.use_cluster_token()
    message = str(caught.value)
    assert re.match(expected, message) and "\n" not in message
    assert "set RAY_AUTH_TOKEN instead" in message
    assert os.environ.get(MODE_ENV) is None


@pytest.mark.parametrize("env, enabled, sent", [
    ({}, False, "this client, which has no token"),
    ({MODE_ENV: "disabled", TOKEN_ENV: "t"}, False,
     "this client, which sends no token (RAY_AUTH_MODE=disabled)"),
    ({MODE_ENV: "token", TOKEN_ENV: "t"}, True, "the token in RAY_AUTH_TOKEN"),
    ({MODE_ENV: "token", TOKEN_PATH_ENV: "/p/token"}, True,
     "the token in RAY_AUTH_TOKEN_PATH (/p/token)"),
])
def test_a_refused_token_is_one_line_naming_what_was_sent_and_both_variables(
        fake_ray, monkeypatch, tmp_path, env, enabled, sent):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rllib_compat, "token_auth_enabled", lambda: enabled)

    def refuse(address):
        raise AuthenticationError("InvalidAuthToken")

    monkeypatch.setattr(rllib_compat, "check_gcs_accepts_this_process", refuse)
    with pytest.raises(ray_session.ClusterAuthError) as caught:
        ray_session.check_cluster_token("10.0.0.1:6379")
    assert str(caught.value) == (
        f"the Ray cluster at 10.0.0.1:6379 requires a token and refused {sent}. Set "
        "RAY_AUTH_TOKEN to the cluster's token, or RAY_AUTH_TOKEN_PATH to a file holding it "
        "(`ray get-auth-token` on the head node prints it).")


def test_an_auth_refusal_is_found_in_the_cause_chain():
    try:
        try:
            raise AuthenticationError("InvalidAuthToken")
        except AuthenticationError as e:
            raise ConnectionError("Failed to connect to Ray cluster") from e
    except ConnectionError as e:
        assert ray_session.is_auth_refusal(e)
    assert not ray_session.is_auth_refusal(ConnectionError("Failed to connect"))
