"""Where each GT object lives on a feature pyramid: centre-prior cells, detection quality per
level, the level it is assigned to, and weights normalised jointly over levels.

Objects come as a padded batch, (N, K) with K the most objects in one image (see
:func:`pad_objects`); everything is vectorised over images and objects (no per-box Python
loops); levels are a short Python list.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
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
    1 at the box centre, ``exp(-2)`` at the middle of an edge for ``r = 0.25``, never below
    ``exp(-20)`` on the object's cells.

    Args:
        boxes: (..., 4) ``(x1, y1, x2, y2)`` in input pixels, e.g. (K, 4) or (N, K, 4).
        feat_shape: ``(H, W)``.
        stride: ``(sy, sx)`` pixels per cell.
        center_offset: where the head puts a cell's prior, in cells (see :func:`cell_centers`).
        sigma_ratio: Gaussian width as a fraction of the box side.

    Returns:
        inside: (..., H, W) bool, prior: (..., H, W) float (0 outside ``inside``).
    """
    leading = boxes.shape[:-1]
    ys, xs = cell_centers(feat_shape, stride, center_offset, boxes.device)
    boxes = boxes.float().reshape(-1, 4)
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
    # floored at exp(-20): a cell far from a tiny box's centre (the nearest-cell fallback on a
    # coarse level) keeps a small positive weight instead of underflowing
    log_prior = (-0.5 * ((dx / sigma_x)**2 + (dy / sigma_y)**2)).clamp(min=-20.0)
    prior = torch.exp(log_prior) * inside
    return inside.view(leading + inside.shape[1:]), prior.view(leading + prior.shape[1:])


def pad_objects(boxes_list: Sequence[Tensor],
                labels_list: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image GT boxes and labels as one padded batch.

    Returns:
        boxes: (N, K, 4), labels: (N, K) long, valid: (N, K) bool; K is the largest number of
        objects in one image (at least 1, so shapes stay non-empty); padding is all zero.
    """
    num = max([len(b) for b in boxes_list] + [1])
    device = boxes_list[0].device
    boxes = torch.zeros((len(boxes_list), num, 4), device=device)
    labels = torch.zeros((len(boxes_list), num), dtype=torch.long, device=device)
    valid = torch.zeros((len(boxes_list), num), dtype=torch.bool, device=device)
    for image, (b, lbl) in enumerate(zip(boxes_list, labels_list)):
        boxes[image, :len(b)] = b.float()
        labels[image, :len(b)] = lbl.long()
        valid[image, :len(b)] = True
    return boxes, labels, valid


def object_quality(probs: Tensor, labels: Tensor, inside: Tensor,
                   gt_boxes: Optional[Tensor] = None,
                   pred_boxes: Optional[Tensor] = None) -> Tensor:
    """Best ``score x IoU`` a model reaches on each object over the object's cells of one level.

    ``score`` is the probability of the object's GT class at an anchor, ``IoU`` the overlap of
    that anchor's decoded box with the GT box (PGD-style quality: a confident but badly placed
    detection is not a good one). Without boxes the quality is the score alone.

    Args:
        probs: (N, A, K_cls, H, W) class probabilities of one level.
        labels: (N, K) GT class per object.
        inside: (N, K, H, W) bool, each object's cells (all False for padding).
        gt_boxes: (N, K, 4) GT boxes, or None.
        pred_boxes: (N, A, 4, H, W) decoded boxes of every anchor, or None.

    Returns:
        (N, K) qualities in [0, 1]; 0 for an object without cells.
    """
    n, num_anchors, _, height, width = probs.shape
    num_objects = labels.shape[1]
    index = labels.long()[:, :, None, None, None].expand(n, num_objects, num_anchors, height,
                                                          width)
    score = probs.transpose(1, 2).gather(1, index)  # (N, K, A, H, W)
    if gt_boxes is not None and pred_boxes is not None:
        from mmdet.structures.bbox import bbox_overlaps
        flat = pred_boxes.permute(0, 1, 3, 4, 2).reshape(n, -1, 4).float()
        iou = bbox_overlaps(gt_boxes.float(), flat)  # (N, K, A*H*W)
        score = score * iou.view(n, num_objects, num_anchors, height, width)
    score = score * inside[:, :, None]
    return score.flatten(2).amax(dim=2)


def assigned_levels(teacher_quality: Tensor) -> Tensor:
    """One-hot (..., L) level assignment: the level where the teacher detects the object best.

    The teacher's head was trained to make the object a positive where its assigner put it, so
    its best ``score x IoU`` names that level without assuming an anchor layout (anchor, point
    or distribution heads alike). Ties go to the finer level.

    Args:
        teacher_quality: (..., L), e.g. (N, K, L), from :func:`object_quality` per level.
    """
    if teacher_quality.numel() == 0:
        return torch.zeros_like(teacher_quality, dtype=torch.bool)
    num_levels = teacher_quality.shape[-1]
    return F.one_hot(teacher_quality.argmax(dim=-1), num_levels).bool()


def joint_object_weights(priors: Sequence[Tensor], levels: Tensor) -> List[Tensor]:
    """Per-level cell weights, each object's weights summing to 1 over its levels.

    Args:
        priors: per level (..., H_l, W_l) non-negative weights (e.g. the centre prior), with the
            same leading object dims, e.g. (K, ...) or (N, K, ...).
        levels: (..., L) bool, the levels each object is distilled on.

    Returns:
        Per level (..., H_l, W_l) weights; an object on no level (or with zero prior) gets 0.
    """
    selected = [prior * levels[..., level, None, None] for level, prior in enumerate(priors)]
    if not selected:
        return []
    totals = sum(s.flatten(-2).sum(dim=-1) for s in selected)
    tiny = torch.finfo(totals.dtype).tiny
    scale = torch.where(totals > 0, 1.0 / totals.clamp(min=tiny), torch.zeros_like(totals))
    return [s * scale[..., None, None] for s in selected]
