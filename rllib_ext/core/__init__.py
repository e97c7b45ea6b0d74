"""Machinery every part of rllib_ext shares, below the algorithms and the command line.

- :mod:`rllib_ext.core.ray_session`: the Ray instances rllib_ext starts (token-protected) or
  joins (with the user's cluster token).
- :mod:`rllib_ext.core.random_streams`: evaluation on random streams of its own, so that it
  never changes a training run.
- :mod:`rllib_ext.core.rllib_compat`: the private names of Ray this package relies on, each
  behind one function with a contract test.
"""
