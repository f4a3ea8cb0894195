"""Where each GT object lives on a feature pyramid: centre-prior cells, detection quality per
level, the level it is assigned to, and weights normalised jointly over levels.

Everything here works on one image at a time with K objects and is vectorised over objects (no
per-box Python loops); levels are a short Python list.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def cell_centers(feat_shape: Tuple[int, int], stride: Tuple[float, float], center_offset: float,
                 device=None) -> Tuple[Tensor, Tensor]:
    """Image coordinates of the cell centres of a feature grid, as the head's priors place them.

    mmdet's ``AnchorGenerator`` puts cell ``(i, j)``'s anchors at ``(j * sx, i * sy)``
    (``center_offset=0``), ``MlvlPointGenerator`` its points at ``((j + 0.5) * sx, ...)``.

    Returns:
        ys: (H, ) and xs: (W, ) pixel coordinates.
    """
    height, width = feat_shape
    ys = (torch.arange(height, device=device, dtype=torch.float32) + center_offset) * stride[0]
    xs = (torch.arange(width, device=device, dtype=torch.float32) + center_offset) * stride[1]
    return ys, xs


def center_prior_cells(boxes: Tensor, feat_shape: Tuple[int, int], stride: Tuple[float, float],
                       center_offset: float = 0.5,
                       sigma_ratio: float = 0.25) -> Tuple[Tensor, Tensor]:
    """Each box's cells (those whose centre lies inside it) and a Gaussian centre prior on them.

    A box that contains no cell centre (smaller than a cell) gets the cell nearest its centre,
    so every object has at least one cell on every level. The prior is
    ``exp(-((x - cx)^2 / (2 (r w)^2) + (y - cy)^2 / (2 (r h)^2)))`` with ``r = sigma_ratio``:
    1 at the box centre, ``exp(-2)`` at the middle of an edge for ``r = 0.25``.

    Args:
        boxes: (K, 4) ``(x1, y1, x2, y2)`` in input pixels.
        feat_shape: ``(H, W)``.
        stride: ``(sy, sx)`` pixels per cell.
        center_offset: where the head puts a cell's prior, in cells (see :func:`cell_centers`).
        sigma_ratio: Gaussian width as a fraction of the box side.

    Returns:
        inside: (K, H, W) bool, prior: (K, H, W) float (0 outside ``inside``).
    """
    ys, xs = cell_centers(feat_shape, stride, center_offset, boxes.device)
    boxes = boxes.float()
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    in_x = (xs[None] >= x1[:, None]) & (xs[None] <= x2[:, None])  # (K, W)
    in_y = (ys[None] >= y1[:, None]) & (ys[None] <= y2[:, None])  # (K, H)
    inside = in_y[:, :, None] & in_x[:, None, :]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    nearest_x = (xs[None] - cx[:, None]).abs().argmin(dim=1)  # (K, )
    nearest_y = (ys[None] - cy[:, None]).abs().argmin(dim=1)
    empty = ~inside.flatten(1).any(dim=1)
    if empty.any():
        rows = torch.nonzero(empty).squeeze(1)
        inside[rows, nearest_y[rows], nearest_x[rows]] = True
    sigma_x = ((x2 - x1).clamp(min=1.0) * sigma_ratio)[:, None, None]
    sigma_y = ((y2 - y1).clamp(min=1.0) * sigma_ratio)[:, None, None]
    dx = xs[None, None, :] - cx[:, None, None]
    dy = ys[None, :, None] - cy[:, None, None]
    prior = torch.exp(-0.5 * ((dx / sigma_x)**2 + (dy / sigma_y)**2))
    return inside, prior * inside


def object_quality(probs: Tensor, labels: Tensor, inside: Tensor,
                   gt_boxes: Optional[Tensor] = None,
                   pred_boxes: Optional[Tensor] = None) -> Tensor:
    """Best ``score x IoU`` a model reaches on each object over the object's cells of one level.

    ``score`` is the probability of the object's GT class at an anchor, ``IoU`` the overlap of
    that anchor's decoded box with the GT box (PGD-style quality: a confident but badly placed
    detection is not a good one). Without boxes the quality is the score alone.

    Args:
        probs: (A, K_cls, H, W) class probabilities of one image and level.
        labels: (K, ) GT class per object.
        inside: (K, H, W) bool, the object's cells.
        gt_boxes: (K, 4) GT boxes, or None.
        pred_boxes: (A, 4, H, W) decoded boxes of every anchor, or None.

    Returns:
        (K, ) qualities in [0, 1]; 0 for an object without cells.
    """
    num_objects = labels.numel()
    num_anchors, _, height, width = probs.shape
    if num_objects == 0:
        return probs.new_zeros(0)
    score = probs[:, labels.long()].permute(1, 0, 2, 3)  # (K, A, H, W)
    if gt_boxes is not None and pred_boxes is not None:
        from mmdet.structures.bbox import bbox_overlaps
        flat = pred_boxes.permute(0, 2, 3, 1).reshape(-1, 4).float()
        iou = bbox_overlaps(gt_boxes.float(), flat).view(num_objects, num_anchors, height, width)
        score = score * iou
    score = score * inside[:, None]
    return score.flatten(1).amax(dim=1)


def assigned_levels(teacher_quality: Tensor) -> Tensor:
    """One-hot (K, L) level assignment: the level where the teacher detects the object best.

    The teacher's head was trained to make the object a positive where its assigner put it, so
    its best ``score x IoU`` names that level without assuming an anchor layout (anchor, point
    or distribution heads alike). Ties go to the finer level.

    Args:
        teacher_quality: (K, L) from :func:`object_quality` per level.
    """
    assigned = torch.zeros_like(teacher_quality, dtype=torch.bool)
    if teacher_quality.numel():
        assigned[torch.arange(teacher_quality.shape[0]), teacher_quality.argmax(dim=1)] = True
    return assigned


def joint_object_weights(priors: Sequence[Tensor], levels: Tensor) -> List[Tensor]:
    """Per-level (K, H, W) cell weights, each object's weights summing to 1 over its levels.

    Args:
        priors: per level (K, H_l, W_l) non-negative weights (e.g. the centre prior).
        levels: (K, L) bool, the levels each object is distilled on.

    Returns:
        Per level (K, H_l, W_l) weights; an object on no level (or with zero prior) gets 0.
    """
    selected = [prior * levels[:, level, None, None] for level, prior in enumerate(priors)]
    if not selected:
        return []
    totals = torch.stack([s.flatten(1).sum(dim=1) for s in selected], dim=1).sum(dim=1)
    scale = torch.where(totals > 0, 1.0 / totals.clamp(min=1e-12), torch.zeros_like(totals))
    return [s * scale[:, None, None] for s in selected]
