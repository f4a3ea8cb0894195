"""Read what a distiller needs to know about a detector: neck widths and its dense head."""
from typing import List, Optional

import torch
from torch import nn


def find_dense_head(detector: nn.Module, source: str = 'auto') -> Optional[str]:
    """Name of the detector's dense prediction head, or None.

    ``'auto'`` picks ``bbox_head`` of one-stage detectors (RetinaNet, FCOS, ATSS, GFL, ...) and
    ``rpn_head`` of two-stage ones (its objectness is a one-class sigmoid prediction).
    """
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    if source != 'auto':
        if not isinstance(getattr(detector, source, None), nn.Module):
            raise ValueError(f'{type(detector).__name__} has no submodule {source!r}; '
                             f"set head_source='auto' or to the name of its dense head")
        return source
    for name in ('bbox_head', 'rpn_head'):
        if isinstance(getattr(detector, name, None), BaseDenseHead):
            return name
    return None


@torch.no_grad()
def probe_feature_channels(detector: nn.Module, image_size: int = 128) -> List[int]:
    """Channels of each feature level ``detector.extract_feat`` returns, from a dummy forward."""
    was_training = detector.training
    detector.eval()
    try:
        param = next(detector.parameters())
        dummy = torch.zeros(1, 3, image_size, image_size, device=param.device,
                            dtype=param.dtype)
        feats = detector.extract_feat(dummy)
    finally:
        detector.train(was_training)
    return [int(f.shape[1]) for f in feats]
