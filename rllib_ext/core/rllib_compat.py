"""Private names of Ray and torch that rllib_ext relies on, each behind one function.

Ray is pinned (2.60.0), but its private modules move between versions: every function here
names what it relies on, and ``tests/core/test_rllib_compat.py`` checks each one against the
installed Ray and torch, so an upgrade that breaks an assumption fails a test named after it
instead of a behaviour test far away.
"""

from __future__ import annotations

import contextlib
import os
import sys


def reload_ray_auth_settings() -> None:
    """Makes this process follow the current ``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN`` /
    ``RAY_AUTH_TOKEN_PATH`` environment.

    Ray reads ``RAY_AUTH_MODE`` into its process-wide ``RayConfig`` when ``ray`` is imported,
    and its C++ ``AuthenticationTokenLoader`` caches the token the first time it is needed;
    child processes (GCS, raylet, workers) read the environment afresh. Ray's own
    ``ray.init`` re-initialises the config the same way when it turns token authentication on
    by default (``authentication_token_setup._enable_token_auth`` in Ray 2.60).
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def token_auth_enabled() -> bool:
    """Whether this process talks to Ray with token authentication (its cached mode)."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    return is_token_auth_enabled()


def check_gcs_accepts_this_process(address: str) -> None:
    """Makes one call to the GCS at ``address`` (``HOST:PORT``) with this process's
    credentials. Raises ``ray.exceptions.AuthenticationError`` at once (about 0.3 s) when the
    GCS refuses them: ``ray.init`` would retry the same refusal for about 20 s first.

    Relies on ``ray._raylet.GcsClient(address=...)``, which fetches the cluster id on
    construction. Its C++ client logs the refusal as one warning line straight to file
    descriptor 2; that line is dropped here (the caller reports the refusal itself).
    """
    from ray._raylet import GcsClient

    with _fd2_to_devnull():
        GcsClient(address=address)


@contextlib.contextmanager
def _fd2_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- torch ---------------------------------------------------------------------------------------


def foreach_norm(tensors: list) -> list:
    """The L2 norm of each tensor, one fused kernel (``torch._foreach_norm``, private but
    stable since torch 1.13): the non-finite gradient check runs it on every gradient step."""
    import torch

    return torch._foreach_norm(tensors)


def foreach_lerp_(targets: list, sources: list, weight: float) -> None:
    """``t += weight * (s - t)`` for every pair, in place, one fused kernel
    (``torch._foreach_lerp_``, private but stable since torch 2.0): Polyak averaging of target
    networks on every policy step."""
    import torch

    torch._foreach_lerp_(targets, sources, weight)


def alias_module_tensors(source, target) -> bool:
    """Makes every parameter and persistent buffer of the ``nn.Module`` ``target`` *the* tensor
    of the same ``state_dict`` name in ``source`` (``_parameters`` / ``_buffers`` entries
    replaced), so that an in-place change to one (an optimizer step, ``load_state_dict``) is
    seen by both. Refuses (``False``, ``target`` unchanged) unless every name of ``target``
    is a parameter or buffer that ``source`` has with the same shape, dtype and device."""
    import torch

    sources = source.state_dict(keep_vars=True)
    slots = []
    for name, tensor in target.state_dict(keep_vars=True).items():
        prefix, _, leaf = name.rpartition(".")
        owner = target.get_submodule(prefix)
        table = (owner._parameters if leaf in owner._parameters
                 else owner._buffers if leaf in owner._buffers else None)
        other = sources.get(name)
        if table is None or other is None or other.shape != tensor.shape \
                or other.dtype != tensor.dtype or other.device != tensor.device \
                or isinstance(other, torch.nn.Parameter) != (table is owner._parameters):
            return False
        slots.append((table, leaf, other))
    for table, leaf, other in slots:
        table[leaf] = other
    return True


# -- RLlib: AlgorithmConfig and Checkpointable ---------------------------------------------------
#
# Besides the accessors below, rllib_ext overrides these private RLlib methods (checked by the
# contract test as well): ``TorchLearner._update`` (many gradient steps per update call),
# ``TorchLearner._uncompiled_update`` (the sequential gradient steps), ``EnvRunner.
# _try_env_step`` (non-finite env data), ``DefaultSACTorchRLModule._qf_forward_train_helper``
# and ``_forward_train_continuous`` and ``SACCatalog._build_qf_encoder_continuous`` (ACE's
# concat critics and per-dimension log-probs), and the property
# ``AlgorithmConfig._model_config_auto_includes`` (each algorithm's model-config keys, as
# RLlib's own algorithms extend it).


def config_value_error(config, message: str) -> None:
    """Raises RLlib's config validation error (``AlgorithmConfig._value_error``: a
    ``ValueError`` with RLlib's hint on suppressing validation, or only a log line when the
    user turned validation off), so our checks behave like RLlib's own."""
    config._value_error(message)


def user_model_config(config):
    """The model config the user set (``AlgorithmConfig._model_config``, without the
    algorithm's auto-includes that the public ``model_config`` property merges in)."""
    return config._model_config


def catalog_model_config(catalog) -> dict:
    """The model config a ``Catalog`` was built with (``Catalog._model_config_dict``)."""
    return catalog._model_config_dict


def wants_component(checkpointable, name: str, components, not_components) -> bool:
    """Whether ``get_state(components, not_components)`` asks for ``name``
    (``Checkpointable._check_component``)."""
    return checkpointable._check_component(name, components, not_components)


def main_process_bundle(config) -> dict:
    """The resource bundle RLlib reserves for the algorithm's main process
    (``ray.rllib.algorithms.utils._get_main_process_bundle``)."""
    from ray.rllib.algorithms.utils import _get_main_process_bundle

    return _get_main_process_bundle(config)


def tune_env_registered(name: str) -> bool:
    """Whether Tune's registry in this process holds an env creator ``name``
    (``ray.tune.registry._global_registry``; ``register_env`` has no public lookup)."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    return _global_registry.contains(ENV_CREATOR, name)


def env_creator(config):
    """The env creator RLlib's env runners use for ``config.env`` (a registered name, a class,
    or a gymnasium id; ``Algorithm._get_env_id_and_creator``, which has no public twin)."""
    from ray.rllib.algorithms.algorithm import Algorithm

    return Algorithm._get_env_id_and_creator(config.env, config)[1]


# -- RLlib: Learner ------------------------------------------------------------------------------


def learner_params(learner) -> dict:
    """``{param id: parameter}`` of every optimizer of a ``TorchLearner`` (``_params``)."""
    return learner._params


def learner_optimizers(learner):
    """Every torch optimizer of a ``TorchLearner`` (the keys of ``_optimizer_parameters``)."""
    return learner._optimizer_parameters


def clip_function(learner):
    """RLlib's gradient clip function of the learner's framework
    (``Learner._get_clip_function()``: ``clip_gradients`` honouring ``grad_clip_by``)."""
    return learner._get_clip_function()


def learner_device(learner):
    """The torch device a learner computes on (``TorchLearner._device``)."""
    return learner._device


def learner_module_spec(learner):
    """The ``MultiRLModuleSpec`` a learner built its modules from (``Learner._module_spec``)."""
    return learner._module_spec


def bump_weights_seq_no(learner) -> None:
    """Marks the learner's weights as new (``Learner._weights_seq_no += 1``): without it,
    ``EnvRunnerGroup.sync_weights`` treats weights changed outside an update (a soft reset)
    as already synced and skips them."""
    learner._weights_seq_no += 1


def local_learner(learner_group):
    """The ``Learner`` of a local ``LearnerGroup`` (``num_learners=0``; ``_learner``)."""
    return learner_group._learner


def weights_seq_no(learner_or_env_runner) -> int:
    """The weights sequence number of a ``Learner`` or an env runner (``_weights_seq_no``):
    the learner counts its updates, an env runner holds the number of the weights it has."""
    return learner_or_env_runner._weights_seq_no


def set_env_runner_weights_seq_no(env_runner, seq_no: int) -> None:
    """Tells an env runner it holds the weights numbered ``seq_no`` (what its ``set_state`` does
    with ``WEIGHTS_SEQ_NO``), for weights it got without ``set_state``."""
    env_runner._weights_seq_no = seq_no


#: Keyword arguments of ``Learner.update`` (through ``LearnerGroup.update``) that keep the
#: learner's metrics instead of reducing and returning them (``_no_metrics_reduce``, what RLlib's
#: own IMPALA learner thread passes); ``learner.metrics.reduce()`` reduces them later.
LEARNER_UPDATE_WITHOUT_REDUCE = {"_no_metrics_reduce": True}


def compute_off_policyness(learner, batch) -> None:
    """RLlib's "weights sequence number" lag metric of a batch
    (``TorchLearner._compute_off_policyness``), which ``_uncompiled_update`` computes."""
    learner._compute_off_policyness(batch)


# -- RLlib: EnvRunnerGroup -----------------------------------------------------------------------


def env_runner_manager(group):
    """The ``FaultTolerantActorManager`` of an ``EnvRunnerGroup`` (``_worker_manager``): its
    health flags and actor handles by index."""
    return group._worker_manager


def make_replacement_env_runner(group, index: int):
    """A new remote env runner for ``index`` built as the group builds its own
    (``EnvRunnerGroup._make_worker`` with the group's env creator and remote config)."""
    return group._make_worker(
        env_creator=group._env_creator, validate_env=None, worker_index=index,
        num_workers=group._remote_config.num_env_runners, recreated_worker=True,
        config=group._remote_config_obj_ref)


def run_env_runners_recreated_callbacks(algo, restored: list[int]) -> None:
    """Fires the ``on_env_runners_recreated`` callbacks for ``restored`` as RLlib's training
    iteration does (``Algorithm._make_on_env_runners_recreated_callbacks``)."""
    algo._make_on_env_runners_recreated_callbacks(
        config=algo.config, env_runner_group=algo.env_runner_group,
        restored_env_runner_indices=restored)

