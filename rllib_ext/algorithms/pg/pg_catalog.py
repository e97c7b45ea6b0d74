"""Model catalog for PG: PPO's encoder and policy head, without the value branch."""

from __future__ import annotations

import gymnasium as gym
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.core.models.catalog import Catalog

from rllib_ext.core.parameterised.torch.hybrid_policy import (
    hybrid_action_dist_cls,
    is_hybrid_space,
)
from rllib_ext.core.rllib_compat import catalog_model_config


class PGCatalog(PPOCatalog):
    """Builds ``encoder`` (RLlib's default for the observation space: MLP, CNN, ...) and ``pi``.

    Action distributions: Categorical for ``Discrete``; diagonal Gaussian for ``Box`` with a
    state-dependent mean and, by default, a *state-independent learned* log-std
    (``free_log_std=True``, set by ``PGConfig``). Pass ``model_config={"free_log_std": False}``
    for a state-dependent log-std head instead. For a parameterised action space
    (``Tuple(Discrete(K), Box...)``): the hybrid distribution of H-PPO (Categorical x diagonal
    Gaussian over the parameters, :mod:`~rllib_ext.core.parameterised.torch.hybrid_policy`).
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config_dict):
        if not isinstance(action_space, gym.spaces.Box):
            # free_log_std only means something for a Gaussian; PPOCatalog raises otherwise.
            model_config_dict = {**dict(model_config_dict), "free_log_std": False}
        super().__init__(observation_space, action_space, model_config_dict)

    def get_action_dist_cls(self, framework: str):
        if is_hybrid_space(self.action_space):
            return hybrid_action_dist_cls(self.action_space, catalog_model_config(self))
        return super().get_action_dist_cls(framework)

    def build_encoder(self, framework: str):
        # PPOCatalog only builds actor-critic encoders; PG needs the plain one of the base class.
        return Catalog.build_encoder(self, framework)
