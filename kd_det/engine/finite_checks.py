"""Which tensors hold NaN or Inf: the shared test of NanGuardHook and the checkpoint hooks."""
from typing import Iterable, List, Tuple

import torch


def non_finite_names(named_tensors: Iterable[Tuple[str, torch.Tensor]]) -> List[str]:
    """Names of the floating-point tensors in ``named_tensors`` with a NaN or Inf element.

    One device synchronisation for all tensors (a stacked flag), so it is cheap enough to run
    every iteration.
    """
    names, flags = [], []
    for name, tensor in named_tensors:
        if isinstance(tensor, torch.Tensor) and torch.is_floating_point(tensor):
            names.append(name)
            flags.append(torch.isfinite(tensor.detach()).all())
    if not names:
        return []
    bad = (~torch.stack(flags)).tolist()
    return [name for name, is_bad in zip(names, bad) if is_bad]


def gradients_of(model: torch.nn.Module) -> List[Tuple[str, torch.Tensor]]:
    """``(name, grad)`` of every parameter of ``model`` that has a gradient."""
    return [(name, param.grad) for name, param in model.named_parameters()
            if param.grad is not None]


def describe_names(names: List[str], total: int, limit: int = 3) -> str:
    """'285 of 288 tensors (a, b, c, ...)' for messages."""
    shown = ', '.join(names[:limit]) + (', ...' if len(names) > limit else '')
    return f'{len(names)} of {total} tensors ({shown})'
