"""Per-location cosine distance between student and teacher feature vectors."""

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
