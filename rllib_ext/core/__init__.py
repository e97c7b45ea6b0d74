"""Machinery every algorithm of rllib_ext shares, below the algorithms and the command line.

Layer order: ``core`` imports neither ``rllib_ext.algorithms`` nor ``rllib_ext.cli``.

- :mod:`~rllib_ext.core.replay_training`: the off-policy training step (sample into a flat
  replay, take the owed gradient steps in one learner call, sync the weights).
- :mod:`~rllib_ext.core.chunked_learner`: many gradient steps per learner update call, and
  gradient averaging over several learners.
- :mod:`~rllib_ext.core.replay`: the flat transition replay (uniform or prioritised).
- :mod:`~rllib_ext.core.target_networks`: Polyak updates of target networks.
- :mod:`~rllib_ext.core.env_runner_faults`: sampling that survives lost env runners.
- :mod:`~rllib_ext.core.non_finite`: non-finite env data and gradients, caught and counted.
- :mod:`~rllib_ext.core.validation`: the config checks whose errors name the fix.
- :mod:`~rllib_ext.core.plain_config`: configs that round-trip through plain dicts (Tune).
- :mod:`~rllib_ext.core.threads`: torch thread limits per process.
- :mod:`~rllib_ext.core.spaces`: the env's spaces, probed once for validation.
- :mod:`~rllib_ext.core.parameterised`: the base of the parameterised-action algorithms
  (P-DQN family, PA-DDPG): action layout, config, learner, RL module, replay.
- :mod:`~rllib_ext.core.ray_session`: the Ray instances rllib_ext starts (token-protected) or
  joins (with the user's cluster token).
- :mod:`~rllib_ext.core.random_streams`: evaluation on random streams of its own, so that it
  never changes a training run.
- :mod:`~rllib_ext.core.rllib_compat`: the private names of Ray and torch this package relies
  on, each behind one function with a contract test.
"""
