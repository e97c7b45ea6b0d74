from rllib_ext.algorithms.pg.pg import PG, PGConfig

__all__ = ["PG", "PGConfig"]
