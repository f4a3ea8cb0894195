"""A detector reduced to the dense network that is exported, measured and timed."""
from typing import List, Sequence, Tuple

import torch
from torch import nn


class DenseForward(nn.Module):
    """A detector reduced to ``image -> flat tuple of head outputs`` (mmdet ``mode='tensor'``).

    Args:
        detector: an mmdet detector (or a kd_det/mmrazor algorithm; its student is used).

    ``forward`` takes (N, 3, H, W) normalised images and returns the head outputs flattened
    level by level, e.g. RetinaNet: ``cls_P2, ..., cls_P6, reg_P2, ..., reg_P6``.
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = getattr(detector, 'student', detector)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs = self.detector._forward(images)
        return tuple(flatten_outputs(outputs))


def flatten_outputs(outputs) -> list:
    """Flatten nested lists/tuples of tensors in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for item in outputs:
        flat.extend(flatten_outputs(item))
    return flat


def output_groups(detector: nn.Module, input_shape: Sequence[int]) -> List[int]:
    """How many flat outputs each of the head's output groups holds (RetinaNet: ``[5, 5]``;
    FCOS: ``[5, 5, 5]`` with centerness), so flat outputs regroup into ``predict_by_feat``'s
    arguments (:func:`regroup_outputs`)."""
    detector = getattr(detector, 'student', detector)
    with torch.no_grad():
        outputs = detector.eval()._forward(torch.zeros(1, *input_shape))
    if isinstance(outputs, torch.Tensor):
        return [1]
    return [len(flatten_outputs(group)) for group in outputs]


def regroup_outputs(flat: Sequence, groups: Sequence[int]) -> List[list]:
    """Inverse of the flattening: ``flat`` (sum(groups) items) -> one list per group."""
    if len(flat) != sum(groups):
        raise ValueError(f'the network returned {len(flat)} outputs; its deploy.json expects '
                         f'{sum(groups)} (groups {list(groups)}). Was it exported from another '
                         'model?')
    regrouped, start = [], 0
    for size in groups:
        regrouped.append(list(flat[start:start + size]))
        start += size
    return regrouped
