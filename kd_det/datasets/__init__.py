from .data_faults import DataFaultError, FaultTolerantDataset, SafeLoadImageFromFile
from .semi_supervised import PartiallyLabeledCocoDataset, is_labeled, labeled_image_ids

__all__ = [
    'DataFaultError', 'FaultTolerantDataset', 'SafeLoadImageFromFile',
    'PartiallyLabeledCocoDataset', 'is_labeled', 'labeled_image_ids'
]
