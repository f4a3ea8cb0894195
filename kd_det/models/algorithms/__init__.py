from .detection_distill import DetectionDistill
from .semi_supervised_distill import SemiSupervisedDetectionDistill

__all__ = ['DetectionDistill', 'SemiSupervisedDetectionDistill']
