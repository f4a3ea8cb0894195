from .amp import BF16AutocastOptimWrapper

__all__ = ['BF16AutocastOptimWrapper']
