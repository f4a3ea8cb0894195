"""Dense class probabilities and the teacher-better gate."""
from typing import List, Sequence

import torch
from torch import Tensor


def dense_class_probs(cls_logits: Tensor, cls_out_channels: int, use_sigmoid: bool) -> Tensor:
    """Per-anchor class probabilities of a dense head output.

    Args:
        cls_logits: (N, A*K, H, W) logits as mmdet dense heads emit them (channel = a*K + k).
        cls_out_channels: K, classes per anchor (``num_classes`` for sigmoid heads,
            ``num_classes + 1`` with background last for softmax heads).
        use_sigmoid: per-class sigmoid (True) or softmax over K (False).

    Returns:
        (N, A, K, H, W) probabilities.
    """
    n, channels, h, w = cls_logits.shape
    if channels % cls_out_channels:
        raise ValueError(f'{channels} classification channels are not a multiple of '
                         f'cls_out_channels={cls_out_channels}')
    logits = cls_logits.float().view(n, channels // cls_out_channels, cls_out_channels, h, w)
    return logits.sigmoid() if use_sigmoid else logits.softmax(dim=2)


def gt_class_score(probs: Tensor, label_map: Tensor) -> Tensor:
    """Probability given to the GT class at each cell, best anchor.

    Args:
        probs: (N, A, K, H, W) from :func:`dense_class_probs`.
        label_map: (N, H, W) GT label per cell, -1 on background (those cells get 0).

    Returns:
        (N, H, W) scores.
    """
    n, num_anchors, _, h, w = probs.shape
    index = label_map.clamp(min=0)[:, None, None].expand(n, num_anchors, 1, h, w)
    score = probs.gather(2, index).squeeze(2).amax(dim=1)
    return score * (label_map >= 0)


def object_max_score(cell_scores: Sequence[Tensor], object_maps: Sequence[Tensor],
                     num_objects: int) -> Tensor:
    """Best score each object reaches over all its cells on all levels.

    Args:
        cell_scores: per level, (N, H, W) scores (e.g. :func:`gt_class_score`).
        object_maps: per level, (N, H, W) long object ids (batch-unique, -1 on background) as
            :func:`~kd_det.models.utils.masks.batch_scale_aware_foreground` returns them.
        num_objects: number of objects in the batch.

    Returns:
        (num_objects, ) scores; an object that covers no cell gets 0.
    """
    best = cell_scores[0].new_zeros(num_objects)
    for scores, objects in zip(cell_scores, object_maps):
        inside = objects >= 0
        best = best.scatter_reduce(0, objects[inside], scores[inside].to(best.dtype), 'amax')
    return best


def spread_object_values(values: Tensor, object_maps: Sequence[Tensor]) -> List[Tensor]:
    """Paint per-object values onto each level's cells.

    Args:
        values: (num_objects, ) one value per object.
        object_maps: per level, (N, H, W) long object ids, -1 on background.

    Returns:
        Per level, (N, H, W) maps with the object's value on its cells and 0 on background.
    """
    if values.numel() == 0:
        return [torch.zeros_like(objects, dtype=values.dtype) for objects in object_maps]
    return [torch.where(objects >= 0, values[objects.clamp(min=0)],
                        torch.zeros_like(objects, dtype=values.dtype)) for objects in object_maps]


def background_score(probs: Tensor, use_sigmoid: bool) -> Tensor:
    """Confidence that a cell is background, worst anchor.

    For sigmoid heads ``1 - max_k p_k``; for softmax heads the background probability (last
    class). The anchor most confident of an object decides, so a cell counts as confidently
    background only if no anchor fires.

    Returns:
        (N, H, W) scores in [0, 1].
    """
    if use_sigmoid:
        return 1.0 - probs.amax(dim=2).amax(dim=1)
    return probs[:, :, -1].amin(dim=1)


def teacher_better_gate(teacher_score: Tensor, student_score: Tensor, soft: bool = False,
                        temperature: float = 0.1) -> Tensor:
    """Where the teacher beats the student (higher score = better), in [0, 1].

    Hard: 1 where ``teacher > student`` else 0. Soft: ``sigmoid((teacher - student) / T)``, so
    a teacher only slightly better guides only a little.
    """
    if soft:
        return torch.sigmoid((teacher_score - student_score) / temperature)
    return (teacher_score > student_score).to(teacher_score.dtype)
