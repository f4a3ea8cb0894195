from .atomic_checkpoint_hook import AtomicCheckpointHook
from .data_fault_hook import DataFaultHook
from .nan_guard_hook import NanGuardHook, NonFiniteLossError
from .sparsity_hook import SparsityHook

__all__ = [
    'AtomicCheckpointHook', 'DataFaultHook', 'NanGuardHook', 'NonFiniteLossError', 'SparsityHook'
]
