from rllib_ext.algorithms.hppo.hppo import HPPO, HPPOConfig

__all__ = ["HPPO", "HPPOConfig"]
