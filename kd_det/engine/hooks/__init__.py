from .atomic_checkpoint_hook import AtomicCheckpointHook
from .data_fault_hook import DataFaultHook
from .nan_guard_hook import NanGuardHook, NonFiniteLossError

__all__ = ['AtomicCheckpointHook', 'DataFaultHook', 'NanGuardHook', 'NonFiniteLossError']
