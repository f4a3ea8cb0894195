"""Align student features/predictions to the teacher's: channel connectors and resizing."""
from typing import List, Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def build_channel_connectors(student_channels: Sequence[int],
                             teacher_channels: Sequence[int]) -> nn.ModuleList:
    """One learnable 1x1 conv per level where the widths differ, identity where they match.

    Args:
        student_channels, teacher_channels: widths of the matched levels, pair by pair (see
            :func:`~kd_det.models.utils.head_outputs.match_levels_by_stride`).
    """
    if len(student_channels) != len(teacher_channels):
        raise ValueError(f'{len(student_channels)} student widths for '
                         f'{len(teacher_channels)} teacher widths: give one per matched level')
    connectors: List[nn.Module] = []
    for s_ch, t_ch in zip(student_channels, teacher_channels):
        connectors.append(nn.Identity() if s_ch == t_ch else nn.Conv2d(s_ch, t_ch, 1))
    return nn.ModuleList(connectors)


def resize_to(x: Tensor, reference: Tensor) -> Tensor:
    """Bilinearly resize ``x`` (N, C, h, w) to the spatial size of ``reference`` (N, C', H, W)."""
    if x.shape[-2:] == reference.shape[-2:]:
        return x
    return F.interpolate(x, size=reference.shape[-2:], mode='bilinear', align_corners=False)
