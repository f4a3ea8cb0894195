from .decoupled_cosine_distiller import DecoupledCosineDistiller
from .dense_distiller_base import DenseDetectionDistiller

__all__ = ['DecoupledCosineDistiller', 'DenseDetectionDistiller']
