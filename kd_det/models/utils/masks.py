"""Foreground masks on feature grids, built from GT boxes without per-box Python loops."""
from typing import Tuple

import torch
from torch import Tensor


def boxes_to_cell_masks(boxes: Tensor, feat_shape: Tuple[int, int],
                        stride: Tuple[float, float]) -> Tensor:
    """Which feature cells each box overlaps.

    Cell (i, j) covers image pixels ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)``; a box marks every
    cell its extent overlaps, so even a box smaller than one cell marks at least one cell.

    Args:
        boxes: (K, 4) boxes ``(x1, y1, x2, y2)`` in input-image pixels.
        feat_shape: ``(H, W)`` of the feature map.
        stride: ``(sy, sx)`` image pixels per cell along height and width.

    Returns:
        (K, H, W) bool masks.
    """
    height, width = feat_shape
    stride_y, stride_x = stride
    device = boxes.device
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    x1, y1, x2, y2 = (boxes.float() / boxes.new_tensor(
        [stride_x, stride_y, stride_x, stride_y]).float()).unbind(dim=1)
    inside_x = (xs[None] + 1 > x1[:, None]) & (xs[None] < x2[:, None])  # (K, W)
    inside_y = (ys[None] + 1 > y1[:, None]) & (ys[None] < y2[:, None])  # (K, H)
    return inside_y[:, :, None] & inside_x[:, None, :]


def scale_aware_foreground(boxes: Tensor, labels: Tensor, feat_shape: Tuple[int, int],
                           stride: Tuple[float, float],
                           return_index: bool = False) -> Tuple[Tensor, ...]:
    """Scale-aware foreground weights and the GT label at each cell of one image.

    Each box spreads a total weight of 1 over the cells it covers (weight ``1 / cells``), so a
    small object counts as much as a large one; where boxes overlap the larger weight, i.e. the
    smaller box, wins and also names the label.

    Args:
        boxes: (K, 4) GT boxes ``(x1, y1, x2, y2)`` in input pixels (K may be 0).
        labels: (K,) class indices.
        feat_shape: ``(H, W)``.
        stride: ``(sy, sx)``.
        return_index: also return which box won each cell.

    Returns:
        weight: (H, W) float, 0 on background.
        label: (H, W) long, the label of the winning box, -1 on background.
        index: (H, W) long, the winning box's row in ``boxes``, -1 on background (only with
            ``return_index``).
    """
    height, width = feat_shape
    if boxes.numel() == 0:
        background = torch.full((height, width), -1, dtype=torch.long, device=boxes.device)
        empty = (boxes.new_zeros((height, width), dtype=torch.float32), background)
        return empty + (background.clone(), ) if return_index else empty
    masks = boxes_to_cell_masks(boxes, feat_shape, stride)  # (K, H, W)
    cells = masks.flatten(1).sum(dim=1).clamp(min=1).float()  # (K,)
    per_box = masks.float() / cells[:, None, None]
    weight, winner = per_box.max(dim=0)
    background = torch.full_like(winner, -1)
    label = torch.where(weight > 0, labels.long()[winner], background)
    if return_index:
        return weight, label, torch.where(weight > 0, winner, background)
    return weight, label


def batch_scale_aware_foreground(boxes_list, labels_list, feat_shape: Tuple[int, int],
                                 stride: Tuple[float, float],
                                 return_index: bool = False) -> Tuple[Tensor, ...]:
    """:func:`scale_aware_foreground` for a batch; returns (N, H, W) weight and label maps.

    With ``return_index`` also an (N, H, W) map of object ids that are unique across the batch:
    image ``n``'s box ``k`` is ``sum(len(boxes_list[m]) for m < n) + k`` (-1 on background).
    """
    results = [scale_aware_foreground(b, l, feat_shape, stride, return_index=return_index)
               for b, l in zip(boxes_list, labels_list)]
    maps = (torch.stack([r[0] for r in results]), torch.stack([r[1] for r in results]))
    if not return_index:
        return maps
    offset, indices = 0, []
    for boxes, result in zip(boxes_list, results):
        indices.append(torch.where(result[2] >= 0, result[2] + offset, result[2]))
        offset += len(boxes)
    return maps + (torch.stack(indices), )
