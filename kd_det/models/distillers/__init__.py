from .confidence_soft_label_distiller import ConfidenceSoftLabelDistiller
from .decoupled_cosine_distiller import DecoupledCosineDistiller
from .dense_distiller_base import DenseDetectionDistiller

__all__ = ['ConfidenceSoftLabelDistiller', 'DecoupledCosineDistiller', 'DenseDetectionDistiller']
