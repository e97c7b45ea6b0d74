"""One sub-package per algorithm, each shaped like RLlib's own ``ray/rllib/algorithms/sac``."""
