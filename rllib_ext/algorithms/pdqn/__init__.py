from rllib_ext.algorithms.pdqn.pdqn import PDQN, PDQNConfig

__all__ = ["PDQN", "PDQNConfig"]
