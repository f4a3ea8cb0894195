"""A detector reduced to the dense network that is exported, measured and timed."""
from typing import Tuple

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
