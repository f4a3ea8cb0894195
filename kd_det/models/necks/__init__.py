from .sparse_bifpn import SparseBiFPN, fast_normalized_fusion

__all__ = ['SparseBiFPN', 'fast_normalized_fusion']
