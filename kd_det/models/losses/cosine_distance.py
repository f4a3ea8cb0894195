"""Weighted cosine distance between student and teacher feature vectors."""
from typing import Optional

import torch
from torch import Tensor


def cosine_distance_map(student: Tensor, teacher: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-location ``1 - cos(student, teacher)`` along the channel axis.

    Args:
        student: (N, C, H, W) features.
        teacher: (N, C, H, W) features, same shape.

    Returns:
        (N, H, W) distances in [0, 2]: 0 for aligned vectors, 2 for opposite ones.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'student features {tuple(student.shape)} and teacher features '
                         f'{tuple(teacher.shape)} differ; align them (connector/resize) first')
    # Computed in fp32: under autocast the norms of 256-dim vectors overflow/underflow in fp16.
    cos = torch.nn.functional.cosine_similarity(student.float(), teacher.float(), dim=1,
                                                eps=eps)
    return 1.0 - cos


def weighted_cosine_distance(student: Tensor, teacher: Tensor, weight: Tensor,
                             normalizer: Optional[Tensor] = None) -> Tensor:
    """Weighted mean of ``1 - cos`` over locations.

    Args:
        student, teacher: (N, C, H, W) features.
        weight: (N, H, W) non-negative per-location weights (e.g. foreground mask x gate).
        normalizer: what to divide by; defaults to ``weight.sum()``. Passing the ungated mask
            sum lets a closed gate shrink the loss instead of re-weighting the open locations.

    Returns:
        Scalar ``sum(weight * (1 - cos)) / normalizer``; 0 (still attached to the graph) when
        the normalizer is zero, e.g. for images without objects.
    """
    distance = cosine_distance_map(student, teacher)
    total = weight.sum() if normalizer is None else normalizer
    return (distance * weight).sum() / total.clamp(min=1e-12)
