from rllib_ext.algorithms.paddpg.paddpg import PADDPG, PADDPGConfig

__all__ = ["PADDPG", "PADDPGConfig"]
