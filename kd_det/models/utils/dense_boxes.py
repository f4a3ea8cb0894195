"""Decode the box branch of an mmdet dense head into absolute boxes per anchor and location.

The encodings (:data:`BOX_ENCODINGS`):

- ``'delta'``: anchor heads whose ``bbox_coder`` encodes 4 deltas per anchor (RetinaNet, ATSS,
  PAA, DDOD, RPN; ``DeltaXYWHBBoxCoder``), decoded against the head's anchors;
- ``'distance'``: point heads with ``DistancePointBBoxCoder`` (FCOS, AutoAssign, VFNet, RTMDet),
  left/top/right/bottom distances from each point; FCOS with ``norm_on_bbox`` predicts them in
  stride units while training and in pixels in eval mode, which is undone here;
- ``'distribution'``: GFL-type heads, a discrete distribution over ``0..reg_max`` per side whose
  expectation (``head.integral``) is the distance in stride units;
- ``'direct_stride'``: TOOD, whose forward returns decoded boxes in stride units;
- ``'yolox'``: YOLOX's centre offset and log-size, decoded by the head's own ``_bbox_decode``.
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

BOX_ENCODINGS = ('delta', 'distance', 'distribution', 'direct_stride', 'yolox')


def box_prediction_kind(head: nn.Module) -> Optional[str]:
    """The head's box encoding (one of :data:`BOX_ENCODINGS`, see the module docstring), or
    None if kd_det cannot decode it (no prior generator, or a coder it does not know)."""
    from mmdet.models.dense_heads import GFLHead, TOODHead, YOLOXHead
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder, DistancePointBBoxCoder
    if not hasattr(head, 'prior_generator'):
        return None
    coder = getattr(head, 'bbox_coder', None)
    if isinstance(head, GFLHead):
        return 'distribution'
    # TOOD and YOLOX decode in their forward / loss with code of their own, not their coder
    if isinstance(head, TOODHead):
        return 'direct_stride'
    if isinstance(head, YOLOXHead):
        return 'yolox'
    if isinstance(coder, DistancePointBBoxCoder):
        return 'distance'
    if isinstance(coder, DeltaXYWHBBoxCoder):
        return 'delta'
    return None


def box_distributions(bbox_pred: Tensor, reg_max: int) -> Tensor:
    """GFL box logits (N, A*4*(reg_max+1), H, W) as (N, A, 4, reg_max+1, H, W)."""
    n, channels, h, w = bbox_pred.shape
    bins = reg_max + 1
    if channels % (4 * bins):
        raise ValueError(f'{channels} box channels are not a multiple of 4 * (reg_max + 1) = '
                         f'{4 * bins}')
    return bbox_pred.view(n, channels // (4 * bins), 4, bins, h, w)


def decode_dense_boxes(head: nn.Module, bbox_preds: Sequence[Tensor],
                       levels: Optional[Sequence[int]] = None) -> List[Tensor]:
    """Absolute ``(x1, y1, x2, y2)`` boxes in input pixels for every anchor of every level.

    Args:
        head: the mmdet dense head that produced ``bbox_preds`` (its priors, coder and
            training mode are used).
        bbox_preds: per level (N, A*C, H, W) box outputs of that head.
        levels: the head's level index of each entry of ``bbox_preds`` (its priors and
            stride); None for ``0, 1, ...``.

    Returns:
        Per level (N, A, 4, H, W) boxes.
    """
    from mmdet.structures.bbox import get_box_tensor
    kind = box_prediction_kind(head)
    if kind is None:
        raise ValueError(f'cannot decode the boxes of {type(head).__name__}: kd_det decodes '
                         'delta (RetinaNet/ATSS), distance (FCOS/RTMDet), distribution (GFL), '
                         "TOOD and YOLOX heads; set the distiller's box_loss='none' for this head")
    levels = range(len(bbox_preds)) if levels is None else levels
    boxes = []
    for level, pred in zip(levels, bbox_preds):
        n, _, h, w = pred.shape
        stride = float(head.prior_generator.strides[level][0])
        if kind in ('direct_stride', 'yolox'):
            boxes.append(_decoded_by_the_head(head, kind, pred, level, stride))
            continue
        level_priors = head.prior_generator.single_level_grid_priors(
            (h, w), level, dtype=pred.dtype, device=pred.device)
        if kind == 'delta':
            num_anchors = level_priors.shape[0] // (h * w)
            encoded = pred.permute(0, 2, 3, 1).reshape(n, h * w * num_anchors, -1)
            points = level_priors
        else:
            if kind == 'distribution':
                dist = box_distributions(pred, head.reg_max)  # (N, A, 4, R+1, H, W)
                num_anchors = dist.shape[1]
                probs = dist.float().softmax(dim=3)
                encoded = (probs * head.integral.project.view(1, 1, 1, -1, 1, 1)).sum(3)
                encoded = encoded.permute(0, 3, 4, 1, 2).reshape(n, -1, 4) * stride
                points = head.anchor_center(level_priors)
            else:
                num_anchors = 1
                # RTMDet without exp_on_reg regresses linearly: a negative side is an empty one
                encoded = pred.permute(0, 2, 3, 1).reshape(n, h * w, 4).clamp(min=0)
                if getattr(head, 'norm_on_bbox', False) and head.training:
                    encoded = encoded * stride  # eval-mode FCOS has multiplied already
                points = level_priors[:, :2]
        decoded = get_box_tensor(head.bbox_coder.decode(
            points[None].expand(n, -1, -1).reshape(-1, points.shape[-1]),
            encoded.reshape(-1, 4)))
        boxes.append(decoded.view(n, h, w, num_anchors, 4).permute(0, 3, 4, 1, 2))
    return boxes


def _decoded_by_the_head(head: nn.Module, kind: str, pred: Tensor, level: int,
                         stride: float) -> Tensor:
    """(N, 1, 4, H, W) boxes of a TOOD (stride units) or YOLOX (offset, log-size) level."""
    n, _, h, w = pred.shape
    if kind == 'direct_stride':
        return (pred.float() * stride)[:, None]
    priors = head.prior_generator.single_level_grid_priors(
        (h, w), level, dtype=pred.dtype, device=pred.device, with_stride=True)
    # the log-size is exponentiated: capped so an untrained head gives huge boxes, not inf
    pred = torch.cat([pred[:, :2], pred[:, 2:].clamp(max=10.0)], dim=1)
    decoded = head._bbox_decode(priors, pred.permute(0, 2, 3, 1).reshape(n, h * w, 4))
    return decoded.view(n, h, w, 1, 4).permute(0, 3, 4, 1, 2)
