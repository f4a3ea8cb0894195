from .amp import BF16AutocastOptimWrapper
from .hooks import AtomicCheckpointHook, DataFaultHook, NanGuardHook, NonFiniteLossError
from .loops import ResumableEpochBasedTrainLoop

__all__ = [
    'BF16AutocastOptimWrapper', 'AtomicCheckpointHook', 'DataFaultHook', 'NanGuardHook',
    'NonFiniteLossError', 'ResumableEpochBasedTrainLoop'
]
