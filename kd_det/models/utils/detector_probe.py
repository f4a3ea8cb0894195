"""Read what a distiller needs to know about a detector: neck widths and strides, its dense
head and what that head outputs."""
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn


def find_dense_head(detector: nn.Module, source: str = 'auto') -> Optional[str]:
    """Name of the detector's dense prediction head, or None.

    ``'auto'`` picks ``bbox_head`` of one-stage detectors (RetinaNet, FCOS, ATSS, GFL, ...) and
    ``rpn_head`` of two-stage ones (its objectness is a one-class sigmoid prediction);
    ``'none'`` picks none.
    """
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    if source == 'none':
        return None
    if source != 'auto':
        if not isinstance(getattr(detector, source, None), nn.Module):
            raise ValueError(f'{type(detector).__name__} has no submodule {source!r}; '
                             f"set head_source='auto', 'none' or the name of its dense head")
        return source
    for name in ('bbox_head', 'rpn_head'):
        if isinstance(getattr(detector, name, None), BaseDenseHead):
            return name
    return None


class DetectorProbe(NamedTuple):
    """A detector's feature levels (``channels``, ``strides`` in input pixels per cell) and, if
    a head was named, what its forward returned on them (``head_outputs``) or None."""
    channels: List[int]
    strides: List[float]
    head_outputs: Optional[Tuple]


@torch.no_grad()
def probe_detector(detector: nn.Module, head_name: Optional[str] = None,
                   image_size: int = 256) -> DetectorProbe:
    """One dummy forward of ``detector.extract_feat`` (and of the dense head ``head_name``).

    The strides are ``image_size`` over each level's height: exact for the power-of-two strides
    of mmdet necks up to ``image_size``.
    """
    was_training = detector.training
    detector.eval()
    try:
        param = next(detector.parameters())
        dummy = torch.zeros(1, 3, image_size, image_size, device=param.device,
                            dtype=param.dtype)
        feats = detector.extract_feat(dummy)
        outputs = None if head_name is None else _head_forward(detector, head_name, feats)
    finally:
        detector.train(was_training)
    return DetectorProbe([int(f.shape[1]) for f in feats],
                         [image_size / f.shape[-2] for f in feats], outputs)



def _head_forward(detector: nn.Module, head_name: str, feats) -> Tuple:
    head = getattr(detector, head_name)
    try:
        return head(feats)
    except Exception as err:
        from .head_outputs import UnsupportedHeadError
        raise UnsupportedHeadError(
            f'{type(head).__name__} ({head_name}) cannot run its forward on the neck features '
            f'alone ({type(err).__name__}: {err}); kd_det reads dense heads whose forward takes '
            "the feature levels. Use a feature-only distiller (mmrazor's CWD/PKD on the neck)"
        ) from err
