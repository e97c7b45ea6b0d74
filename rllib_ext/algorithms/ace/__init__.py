from rllib_ext.algorithms.ace.ace import ACE, ACEConfig
from rllib_ext.algorithms.ace.callbacks import ACECallback
from rllib_ext.algorithms.ace.causal import compute_causal_weights

__all__ = ["ACE", "ACECallback", "ACEConfig", "compute_causal_weights"]
