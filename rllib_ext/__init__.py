"""rllib_ext: algorithms Ray RLlib lacks, as plugins on RLlib's new API stack (torch).

Importing registers every algorithm with Tune (``tune.Tuner("PG", ...)``) and every
environment of the package with gymnasium and RLlib; it prints nothing. After ``ray.init()``
on a fresh cluster call :func:`register` again.
"""

from rllib_ext.algorithms.ace import ACE, ACEConfig
from rllib_ext.algorithms.hppo import HPPO, HPPOConfig
from rllib_ext.algorithms.paddpg import PADDPG, PADDPGConfig
from rllib_ext.algorithms.pdqn import PDQN, PDQNConfig
from rllib_ext.algorithms.pg import PG, PGConfig
from rllib_ext.registry import register

__all__ = [
    "ACE", "ACEConfig", "HPPO", "HPPOConfig", "PADDPG", "PADDPGConfig", "PDQN", "PDQNConfig",
    "PG", "PGConfig", "register",
]
__version__ = "0.1.0"

register()
