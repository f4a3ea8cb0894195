"""Box distillation distance between decoded student and teacher boxes."""
from torch import Tensor


def giou_distance(student_boxes: Tensor, teacher_boxes: Tensor, eps: float = 1e-6) -> Tensor:
    """``1 - GIoU`` of aligned box pairs.

    Args:
        student_boxes, teacher_boxes: (..., 4) boxes ``(x1, y1, x2, y2)``.

    Returns:
        (...) distances in [0, 2]: 0 for identical boxes, toward 2 for distant disjoint ones.
    """
    from mmdet.structures.bbox import bbox_overlaps
    if student_boxes.shape != teacher_boxes.shape:
        raise ValueError(f'student boxes {tuple(student_boxes.shape)} and teacher boxes '
                         f'{tuple(teacher_boxes.shape)} differ')
    shape = student_boxes.shape[:-1]
    giou = bbox_overlaps(student_boxes.float().reshape(-1, 4), teacher_boxes.float().reshape(
        -1, 4), mode='giou', is_aligned=True, eps=eps)
    return (1.0 - giou).view(shape)
