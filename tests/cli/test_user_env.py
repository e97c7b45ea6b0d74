"""Users' own envs in experiment files (issue 15): ``env:`` as a registered name, a gymnasium
id (also ``module:Id-v0``) or an entry point ``module:Class`` / ``module:factory``, from a
module beside the file that is on no ``sys.path``; the real import error when it does not
import; ``rllib-ext train --address`` on a 2-node cluster shipping the module to a remote
env runner; ``--storage`` takes filesystem paths only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest

from rllib_ext.cli.config_file import load_experiment
from rllib_ext.cli.main import main
from rllib_ext.cli.schema import ConfigError

#: The user's env module: a sign guessing game. ``env_config["record"]`` names a file that
#: every construction appends "<Ray node id, or 'driver' outside actors> <__file__>" to.
ENV_MODULE = textwrap.dedent(
    '''
    import gymnasium as gym
    import numpy as np


    class TinyEnv(gym.Env):
        """Reward 1 for guessing the sign of the observation; ``length`` steps."""

        def __init__(self, config=None, *, length=10, record=None):
            config = dict(config or {})
            self.length = int(config.get("length", length))
            record = config.get("record", record)
            if record:
                import ray

                in_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id()
                node = ray.get_runtime_context().get_node_id() if in_actor else "driver"
                with open(record, "a") as f:
                    f.write(f"{node} {__file__}\\n")
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
            self.action_space = gym.spaces.Discrete(2)

        def _observe(self):
            self.obs = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
            return self.obs

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self._observe(), {}

        def step(self, action):
            reward = float((self.obs[0] > 0) == bool(action))
            self.t += 1
            return self._observe(), reward, False, self.t >= self.length, {}


    def make_tiny(config):
        return TinyEnv(config)


    gym.register("{gym_id}", entry_point=TinyEnv)
    '''
)

EXPERIMENT = textwrap.dedent(
    """
    algorithm: PG
    env: {env}
    env_config: {{length: 3}}
    config:
      training: {{train_batch_size_per_learner: 30}}
      env_runners: {{num_env_runners: 0}}
      rl_module: {{model_config: {{fcnet_hiddens: [8]}}}}
    stop: {{num_env_steps_sampled_lifetime: 100}}
    """
)


@pytest.fixture
def user_env(tmp_path, monkeypatch):
    """``my_env_<hex>.py`` (and a package ``my_pkg_<hex>/envs.py``) in ``tmp_path/cfg``, which
    is on no ``sys.path``; the working directory is ``tmp_path/elsewhere``. ``sys.path``,
    ``sys.modules`` and gymnasium's registry are restored afterwards."""
    tag = uuid.uuid4().hex[:8]
    name, package, gym_id = f"my_env_{tag}", f"my_pkg_{tag}", f"UserTiny{tag}-v0"
    folder = tmp_path / "cfg"
    (folder / package).mkdir(parents=True)
    (folder / f"{name}.py").write_text(ENV_MODULE.replace("{gym_id}", gym_id))
    (folder / package / "__init__.py").write_text("")
    (folder / package / "envs.py").write_text(
        ENV_MODULE.replace("{gym_id}", f"Pkg{gym_id}"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield SimpleNamespace(name=name, package=package, gym_id=gym_id, folder=folder,
                          elsewhere=elsewhere)
    for module in [m for m in sys.modules if m.startswith((name, package))]:
        del sys.modules[module]
    for env_id in (gym_id, f"Pkg{gym_id}"):
        gym.envs.registry.pop(env_id, None)


def _experiment(folder: Path, env: str) -> Path:
    path = folder / "exp.yaml"
    path.write_text(EXPERIMENT.format(env=env))
    return path


def _make(config):
    """One env made the way RLlib's env runners make ``config.env``."""
    from ray.rllib.env.env_context import EnvContext

    from rllib_ext.core.rllib_compat import env_creator

    return env_creator(config)(EnvContext(config.env_config, worker_index=1))


@pytest.mark.parametrize("form", ["{name}:TinyEnv", "{name}:make_tiny", "{name}:{gym_id}",
                                  "{name}.TinyEnv", "{package}.envs:TinyEnv"])
def test_each_user_env_form_loads_and_builds_from_another_directory(user_env, form):
    from rllib_ext import PGConfig
    from rllib_ext.core.plain_config import plain_config_dict

    env = form.format(**vars(user_env))
    assert str(user_env.folder) not in sys.path and Path.cwd() == user_env.elsewhere
    exp = load_experiment(_experiment(user_env.folder, env))
    config = exp.build_config()

    made = _make(config)
    assert type(made.unwrapped).__name__ == "TinyEnv" and made.unwrapped.length == 3
    if form == "{name}.TinyEnv":  # the older form: RLlib gets the class
        assert isinstance(config.env, type) and config.env.__name__ == "TinyEnv"
    else:  # a string registered with Tune: plain data for Tune's param_space
        assert config.env == env
    # Tune's param_space (plain data) gives the trial the same env.
    restored = PGConfig().update_from_dict(plain_config_dict(config))
    assert restored.env == config.env
    # What `rllib-ext train --address` ships: the file or package beside the experiment.
    top = user_env.package if form.startswith("{package}") else f"{user_env.name}.py"
    assert exp.shipped_modules() == [str(user_env.folder / top)]


@pytest.mark.parametrize("env", ["CartPole-v1", "rllib_ext/CartPoleNoVelocity-v0",
                                 "tune_registered"])
def test_registered_names_stay_strings_and_ship_nothing(tmp_path, monkeypatch, env):
    from ray.tune.registry import register_env

    register_env("tune_registered", lambda config: gym.make("CartPole-v1"))
    text = EXPERIMENT.format(env=env).replace("env_config: {length: 3}\n", "")
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    exp = load_experiment(path)
    config = exp.build_config()
    assert config.env == env and exp.shipped_modules() == []


def test_a_module_that_does_not_import_shows_the_import_error(user_env, capsys):
    folder = user_env.folder
    with pytest.raises(ConfigError) as missing:
        load_experiment(_experiment(folder, "no_such_module_xyz:TinyEnv"))
    message = str(missing.value)
    assert ("env 'no_such_module_xyz:TinyEnv': cannot import module 'no_such_module_xyz' "
            "(ModuleNotFoundError: No module named 'no_such_module_xyz')") in message
    assert f"the experiment file's folder ({folder})" in message
    assert f"the working directory ({user_env.elsewhere})" in message

    # The module exists but its own import fails: that error, and where.
    broken = f"{user_env.name}_broken"
    (folder / f"{broken}.py").write_text("import os\nimport not_installed_dependency_xyz\n")
    with pytest.raises(ConfigError) as failing:
        load_experiment(_experiment(folder, f"{broken}:TinyEnv"))
    assert (f"importing module {broken!r} failed: ModuleNotFoundError: No module named "
            f"'not_installed_dependency_xyz' (at {folder / broken}.py:2)") in str(failing.value)

    # The older dotted form says the same, not just "unknown env".
    with pytest.raises(ConfigError, match="No module named 'no_such_module_xyz'"):
        load_experiment(_experiment(folder, "no_such_module_xyz.TinyEnv"))

    # A missing name in a module that imports: the closest names.
    with pytest.raises(ConfigError, match="has no attribute 'TinyEnvv' and registers no "
                                          "gymnasium id 'TinyEnvv'. Did you mean 'TinyEnv'"):
        load_experiment(_experiment(folder, f"{user_env.name}:TinyEnvv"))

    # From the command line: one message, exit 2, no traceback.
    assert main(["train", str(_experiment(folder, "no_such_module_xyz:TinyEnv"))]) == 2
    err = capsys.readouterr().err
    assert "No module named 'no_such_module_xyz'" in err and "Traceback" not in err


def test_worker_side_creator_names_the_import_error_and_the_fix():
    from rllib_ext.user_envs import make_entry_point_env, make_gymnasium_env

    with pytest.raises(ImportError, match="No module named 'absent_env_module'.*py_modules"):
        make_entry_point_env({}, entry_point="absent_env_module:Env")
    with pytest.raises(ImportError, match="No module named 'absent_env_module'.*py_modules"):
        make_gymnasium_env({}, env_id="absent_env_module:Env-v0")


def test_installed_packages_and_rllib_ext_are_not_shipped():
    from rllib_ext.user_envs import module_source

    assert module_source("gymnasium.envs.classic_control") is None
    assert module_source("rllib_ext.envs") is None
    assert module_source("json") is None


def test_init_ray_ships_the_user_modules(monkeypatch):
    """On a cluster next to rllib_ext, in the embedded Ray alone (whose workers would
    otherwise only see the driver's working directory)."""
    import ray

    import rllib_ext
    from rllib_ext.cli import runner

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    # The embedded instance's helper and the cluster's token check, without Ray.
    monkeypatch.setattr(runner.ray_session, "init_local_ray",
                        lambda **kwargs: calls.append(kwargs) or "127.0.0.1:1")
    monkeypatch.setattr(runner.ray_session, "use_cluster_token", lambda: None)
    monkeypatch.setattr(runner.ray_session, "check_cluster_token", lambda address: None)
    monkeypatch.setattr(runner, "_check_reachable", lambda address: None)
    monkeypatch.setattr(rllib_ext, "register", lambda: None)
    where = runner.init_ray("10.0.0.1:6379", ["/somewhere/my_env.py"])
    assert where == "the Ray cluster at 10.0.0.1:6379, shipping my_env.py to its workers"
    assert calls[-1]["runtime_env"]["py_modules"] == [
        str(Path(rllib_ext.__file__).parent), "/somewhere/my_env.py"]
    where = runner.init_ray("local", ["/somewhere/my_pkg"])
    assert where.endswith("(a new instance at 127.0.0.1:1, token-protected), shipping my_pkg "
                          "to its workers")
    assert calls[-1]["runtime_env"]["py_modules"] == ["/somewhere/my_pkg"]
    runner.init_ray("local")
    assert "py_modules" not in calls[-1]["runtime_env"]


def test_a_checkpoint_of_an_entry_point_env_evaluates_in_a_new_process(user_env, ray_session):
    """`rllib-ext evaluate` in a process that never loaded the experiment file: the entry
    point is registered again from the checkpoint's config, and its module is shipped."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rllib_ext.cli.evaluation import checkpoint_user_modules, evaluate_checkpoint

    env = f"{user_env.name}:make_tiny"
    config = load_experiment(_experiment(user_env.folder, env)).build_config()
    algo = config.build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(user_env.folder / "checkpoint"))
    finally:
        algo.stop()
    _global_registry.unregister(ENV_CREATOR, env)  # as in a new process
    assert checkpoint_user_modules(checkpoint) == [str(user_env.folder / f"{user_env.name}.py")]
    assert _global_registry.contains(ENV_CREATOR, env)
    returns, lengths = evaluate_checkpoint(checkpoint, num_episodes=2)
    assert lengths == [3, 3]


#: Runs a 2-node ray.cluster_utils.Cluster (1 CPU each) until its stdin closes; prints the
#: address. A process of its own: Cluster.shutdown() resets this process's internal KV
#: client, which would break the test session's Ray.
CLUSTER_SCRIPT = textwrap.dedent(
    """
    import sys
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        print(cluster.address, flush=True)
        sys.stdin.read()
    finally:
        cluster.shutdown()
    """
)


def test_train_on_a_two_node_cluster_ships_the_env_module(user_env):
    """`rllib-ext train --address` from a directory where the module is not, on a cluster
    whose workers have never seen it: PG with one env runner on the other node (each node
    has 1 CPU: the trainer takes one, the env runner the other), the module shipped."""
    record = user_env.folder / "made.txt"
    path = user_env.folder / "exp.yaml"
    path.write_text(textwrap.dedent(
        f"""
        algorithm: PG
        env: {user_env.name}:TinyEnv
        env_config: {{length: 10, record: {record}}}
        config:
          training: {{train_batch_size_per_learner: 100}}
          env_runners: {{num_env_runners: 1}}
          rl_module: {{model_config: {{fcnet_hiddens: [8]}}}}
        stop: {{num_env_steps_sampled_lifetime: 250}}
        """))
    # A private Ray temp dir: the cluster's address file must not be seen by other Rays.
    ray_tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update(RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled")
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER_SCRIPT], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        address = cluster.stdout.readline().strip()
        assert address, f"the cluster did not start: {cluster.stderr.read()[-2000:]}"
        cli = Path(sys.executable).parent / "rllib-ext"
        run = subprocess.run(
            [str(cli), "train", str(path), "--address", address,
             "--storage", str(user_env.folder / "runs")],
            cwd=user_env.elsewhere, env=env, capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert (f"on the Ray cluster at {address}, shipping {user_env.name}.py to its "
                "workers") in run.stdout
        assert "done: " in run.stdout
    finally:
        cluster.stdin.close()
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    made = [line.split(" ", 1) for line in record.read_text().splitlines()]
    in_actors = [(node, file) for node, file in made if node != "driver"]
    # The trainer and the env runner (on the other node) imported the shipped copy (in Ray's
    # runtime_resources), not the original.
    assert len({node for node, _ in in_actors}) == 2, made
    assert all("runtime_resources" in file and not file.startswith(str(user_env.folder))
               for _, file in in_actors), made


def test_storage_uri_is_refused_with_the_alternatives(capsys):
    """The CLI reads its runs back from disk: ``--storage s3://...`` is a usage error that
    names the shared-filesystem path and Tune's own storage_path instead."""
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "configs/pg/cartpole.yaml", "--storage", "s3://bucket/runs"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "shared filesystem" in err and "tune.RunConfig(storage_path=...)" in err
