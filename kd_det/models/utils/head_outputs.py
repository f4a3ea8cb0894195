"""What an mmdet dense head outputs, read from the head itself, and its outputs in one layout.

:func:`describe_dense_head` runs the head once on the probe features and reads its attributes:

- the forward outputs: output 0 is the classification, output 1 the boxes; a further output with
  one channel per prior is a quality branch (FCOS/ATSS/AutoAssign centerness, PAA/DDOD IoU,
  YOLOX objectness); other outputs (VFNet's refined boxes, CenterNet's offsets) are not read;
- the classifier: ``cls_out_channels`` (``num_classes`` when the head has no such attribute,
  CenterNet), sigmoid or softmax (``use_sigmoid_cls``, else ``loss_cls.use_sigmoid``), and
  whether the forward already returns probabilities (``loss_cls.activated``, TOOD; CenterNet's
  ``GaussianFocalLoss`` heatmap) instead of logits;
- the box encoding (:func:`~kd_det.models.utils.dense_boxes.box_prediction_kind`);
- priors per location (``prior_generator.num_base_priors``, 1 without a generator) and the
  strides of the levels.

:func:`dense_predictions` turns the recorded outputs of one step into class logits, boxes and
quality logits for the levels a distiller compares.
"""
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .dense_boxes import box_prediction_kind

class UnsupportedHeadError(ValueError):
    """A dense head whose outputs kd_det's prediction distillers cannot read."""


@dataclass(frozen=True)
class HeadOutputs:
    """What one dense head predicts, per level (N, channels, H, W).

    Attributes:
        head_type: class name of the head, e.g. ``'RTMDetSepBNHead'``.
        head_name: attribute of the detector that holds it (``'bbox_head'``, ``'rpn_head'``).
        num_outputs: number of per-level output lists its forward returns.
        cls_out_channels: K, class channels per prior (``num_classes + 1`` for softmax heads).
        use_sigmoid: per-class sigmoid (True) or softmax over K with background last (False).
        cls_activated: the forward returns probabilities, not logits.
        box_encoding: one of :data:`~kd_det.models.utils.dense_boxes.BOX_ENCODINGS`, or
            None when kd_det cannot decode them.
        quality_index: index of the quality output (one logit per prior), or None.
        quality_kind: ``'centerness'``, ``'iou'``, ``'objectness'`` or ``'quality'``, or None.
        num_priors: anchors (priors) per location.
        strides: pixels per cell of each level.
    """
    head_type: str
    head_name: str
    num_outputs: int
    cls_out_channels: int
    use_sigmoid: bool
    cls_activated: bool
    box_encoding: Optional[str]
    quality_index: Optional[int]
    quality_kind: Optional[str]
    num_priors: int
    strides: Tuple[float, ...]

    @property
    def summary(self) -> tuple:
        """``(cls_out_channels, use_sigmoid, head_name)``: what must match between the heads."""
        return self.cls_out_channels, self.use_sigmoid, self.head_name


class DensePredictions(NamedTuple):
    """One model's predictions on the compared levels, each a list of (N, C, H, W) tensors:
    ``cls_logits`` (A*K channels, logits even where the head emits probabilities),
    ``bbox_preds`` (as the head emits them) and ``quality_logits`` (A channels, or None)."""
    cls_logits: List[Tensor]
    bbox_preds: List[Tensor]
    quality_logits: Optional[List[Tensor]]


def _use_sigmoid(head: nn.Module) -> Optional[bool]:
    if hasattr(head, 'use_sigmoid_cls'):
        return bool(head.use_sigmoid_cls)
    for name in ('loss_cls', 'loss_center_heatmap'):
        loss = getattr(head, name, None)
        if loss is not None:
            # CenterNet's heatmap is a per-class sigmoid (GaussianFocalLoss on probabilities)
            return bool(getattr(loss, 'use_sigmoid', type(loss).__name__ == 'GaussianFocalLoss'))
    return None


def _cls_activated(head: nn.Module) -> bool:
    loss = getattr(head, 'loss_cls', None) or getattr(head, 'loss_center_heatmap', None)
    return bool(getattr(loss, 'activated', False)) or \
        type(loss).__name__ == 'GaussianFocalLoss'


def _checked_box_encoding(head: nn.Module, box_channels: Optional[int],
                          num_priors: int) -> Optional[str]:
    """:func:`box_prediction_kind` if the box output has the channels it implies, else None."""
    encoding = box_prediction_kind(head)
    if encoding is None or box_channels is None:
        return None
    per_prior = 4 * (head.reg_max + 1) if encoding == 'distribution' else 4
    return encoding if box_channels == per_prior * num_priors else None


def _quality_kind(head: nn.Module) -> str:
    for attr, kind in (('loss_obj', 'objectness'), ('loss_iou', 'iou'),
                       ('loss_centerness', 'centerness')):
        if hasattr(head, attr):
            return kind
    return 'quality'


def quality_branch_index(head: nn.Module, outputs: Sequence) -> Optional[int]:
    """Index of the head's quality output in ``outputs`` (its forward's), or None.

    The first output after classes and boxes with one channel per prior: FCOS/ATSS/AutoAssign
    centerness, PAA/DDOD IoU, YOLOX objectness. GFL, RTMDet and VFNet have none (their class
    score is IoU-aware; VFNet's third output is its refined boxes), nor have RetinaNet and RPN.
    """
    generator = getattr(head, 'prior_generator', None)
    num_priors = generator.num_base_priors[0] if generator is not None else 1
    return next((i for i in range(2, len(outputs))
                 if {int(t.shape[1]) for t in outputs[i]} == {num_priors}), None)


def describe_dense_head(head: nn.Module, head_name: str, outputs: Sequence,
                        strides: Sequence[float]) -> HeadOutputs:
    """Read a dense head's outputs.

    Args:
        head: the mmdet dense head.
        head_name: its attribute name in the detector.
        outputs: what ``head(feats)`` returned on probe features: per output a list of
            (N, C, H, W) tensors, one per level.
        strides: pixels per cell of each probe level.

    Raises:
        UnsupportedHeadError: naming the head class and what it lacks.
    """
    name = type(head).__name__
    per_level = [o for o in outputs if isinstance(o, (list, tuple)) and o and
                 all(isinstance(t, Tensor) and t.dim() == 4 for t in o)]
    if len(per_level) != len(outputs) or not per_level:
        raise UnsupportedHeadError(
            f'{name} ({head_name}) does not return per-level (N, C, H, W) maps from its '
            'forward; kd_det reads dense heads whose forward gives (class maps, box maps, ...) '
            "per FPN level. Use a feature-only distiller (mmrazor's CWD/PKD on the neck)")
    num_classes = getattr(head, 'num_classes', None)
    cls_out_channels = getattr(head, 'cls_out_channels', num_classes)
    use_sigmoid = _use_sigmoid(head)
    if cls_out_channels is None or use_sigmoid is None:
        raise UnsupportedHeadError(
            f'{name} ({head_name}) has no cls_out_channels/num_classes or no sigmoid/softmax '
            'setting (use_sigmoid_cls, loss_cls.use_sigmoid), so kd_det cannot tell its class '
            "logits apart; use a feature-only distiller (mmrazor's CWD/PKD on the neck)")
    generator = getattr(head, 'prior_generator', None)
    num_priors = generator.num_base_priors[0] if generator is not None else 1
    if generator is not None and len(set(generator.num_base_priors)) > 1:
        raise UnsupportedHeadError(
            f'{name} ({head_name}) has {list(generator.num_base_priors)} priors per location on '
            'its levels; kd_det needs the same number of priors on every level')
    cls_channels = {int(t.shape[1]) for t in per_level[0]}
    if cls_channels != {num_priors * cls_out_channels}:
        raise UnsupportedHeadError(
            f'the first output of {name} ({head_name}) has {sorted(cls_channels)} channels per '
            f'location, not {num_priors} priors x {cls_out_channels} classes: it packs classes '
            'with boxes or objectness (YOLOv3-style), which kd_det cannot split; use a '
            "feature-only distiller (mmrazor's CWD/PKD on the neck)")
    box_channels = int(per_level[1][0].shape[1]) if len(per_level) > 1 else None
    quality_index = quality_branch_index(head, per_level)
    return HeadOutputs(
        head_type=name, head_name=head_name, num_outputs=len(per_level),
        cls_out_channels=int(cls_out_channels), use_sigmoid=use_sigmoid,
        cls_activated=_cls_activated(head),
        box_encoding=_checked_box_encoding(head, box_channels, num_priors),
        quality_index=quality_index,
        quality_kind=None if quality_index is None else _quality_kind(head),
        num_priors=int(num_priors), strides=tuple(float(s) for s in strides))


def probability_logits(probs: Tensor, eps: float = 1e-6) -> Tensor:
    """Logits of probabilities (``log(p / (1 - p))``, p clamped to ``[eps, 1 - eps]``)."""
    probs = probs.float().clamp(eps, 1.0 - eps)
    return torch.log(probs) - torch.log1p(-probs)


def dense_predictions(info: HeadOutputs, outputs: Sequence, levels: Sequence[int],
                      quality_index: Optional[int] = None) -> DensePredictions:
    """The recorded outputs of one forward, on ``levels``, as class logits, boxes and quality.

    Args:
        info: :func:`describe_dense_head` of the head.
        outputs: what the head's forward returned (per output a per-level list).
        levels: the head's levels to keep, in order.
        quality_index: the output to read as quality logits (None: no quality).
    """
    cls = [outputs[0][level] for level in levels]
    if info.cls_activated:
        cls = [probability_logits(p) for p in cls]
    boxes = [outputs[1][level] for level in levels] if len(outputs) > 1 else []
    quality = None if quality_index is None else \
        [outputs[quality_index][level] for level in levels]
    return DensePredictions(cls, boxes, quality)


def max_over_priors(maps: Tensor, num_priors: int) -> Tensor:
    """(N, A*C, H, W) per-prior maps as (N, C, H, W), the highest value over the A priors."""
    n, channels, h, w = maps.shape
    return maps.view(n, num_priors, channels // num_priors, h, w).amax(dim=1)


def match_levels_by_stride(student_strides: Sequence[float],
                           teacher_strides: Sequence[float]) -> List[Tuple[int, int]]:
    """``(student level, teacher level)`` pairs of the strides both pyramids have, finest first.

    RTMDet/YOLOX necks give strides 8/16/32, the RetinaNet family 8..128: the pairs are then
    the three shared strides and P6/P7 of the teacher are not distilled.

    Raises:
        ValueError: when the two pyramids share no stride.
    """
    teacher_index = {round(float(s), 3): i for i, s in enumerate(teacher_strides)}
    pairs = [(i, teacher_index[round(float(s), 3)]) for i, s in enumerate(student_strides)
             if round(float(s), 3) in teacher_index]
    if not pairs:
        raise ValueError(
            f'the student neck gives strides {_strides(student_strides)}, the teacher '
            f'{_strides(teacher_strides)}: no level in common to distill. Fix: use necks with '
            'at least one common stride (e.g. start_level/num_outs of the FPN)')
    return sorted(pairs, key=lambda pair: student_strides[pair[0]])


def _strides(strides: Sequence[float]) -> str:
    return '(' + ', '.join(f'{float(s):g}' for s in strides) + ')'
