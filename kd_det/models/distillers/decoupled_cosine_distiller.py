"""Decoupled foreground/background distillation with cosine features and a teacher-better gate."""
from typing import Dict, List, Tuple

import torch
from mmrazor.registry import MODELS
from torch import Tensor

from kd_det.models.losses.cosine_distance import cosine_distance_map
from kd_det.models.losses.prediction_kl import prediction_kl
from kd_det.models.utils.align import resize_to
from kd_det.models.utils.gates import (background_score, dense_class_probs, gt_class_score,
                                       object_max_score, spread_object_values,
                                       teacher_better_gate)
from kd_det.models.utils.masks import batch_scale_aware_foreground
from .dense_distiller_base import DenseDetectionDistiller

GATE_MODES = ('hard', 'soft', 'off')
GATE_LEVELS = ('object', 'location')


@MODELS.register_module()
class DecoupledCosineDistiller(DenseDetectionDistiller):
    """Foreground cosine + background KL distillation, gated to where the teacher is better.

    On **foreground** cells (inside GT boxes, scale-aware weights so small objects count as much
    as large ones) the student's FPN feature vectors are pulled toward the teacher's direction:
    ``1 - cos(s, t)``. On **background** cells the student's classification predictions match
    the teacher's with KL(teacher || student) at temperature ``T`` (per-class Bernoulli KL for
    sigmoid heads, softmax KL otherwise). A **gate** keeps only cells where the teacher beats
    the student against the GT: higher probability for the GT class on foreground, higher
    background confidence on background.

    Features, head outputs and GT are recorded automatically (see
    :class:`DenseDetectionDistiller`). Use it inside ``DetectionDistill`` (the teacher runs
    backbone + neck + head only) or mmrazor's ``SingleTeacherDistill``; not
    ``FpnTeacherDistill``, which skips the teacher's head.

    Args:
        loss_fg_weight (float): weight of the foreground cosine term. Defaults to 2.0.
        loss_bg_weight (float): weight of the background KL term. Defaults to 1.0.
        temperature (float): KL temperature ``T``. Defaults to 1.0.
        gate (str): ``'hard'`` (0/1 where the teacher is better), ``'soft'``
            (``sigmoid((teacher - student) / gate_temperature)``) or ``'off'``.
            Defaults to ``'hard'``.
        gate_temperature (float): sharpness of the soft gate. Defaults to 0.1.
        gate_level (str): what the foreground gate judges: ``'object'`` (each GT object's best
            GT-class probability over its cells, so the whole object is in or out) or
            ``'location'`` (cell by cell). Defaults to ``'object'``: inside a box but away
            from the object both models give the GT class almost nothing, and a cell-wise
            comparison of such near-zero scores is a coin flip.
        neck_source, head_source: see :class:`DenseDetectionDistiller`. Without a dense head
            only the (ungated) cosine term runs.
    """

    def __init__(self,
                 loss_fg_weight: float = 2.0,
                 loss_bg_weight: float = 1.0,
                 temperature: float = 1.0,
                 gate: str = 'hard',
                 gate_temperature: float = 0.1,
                 gate_level: str = 'object',
                 **kwargs):
        super().__init__(**kwargs)
        if gate not in GATE_MODES:
            raise ValueError(f'gate must be one of {GATE_MODES}, got {gate!r}')
        if gate_level not in GATE_LEVELS:
            raise ValueError(f'gate_level must be one of {GATE_LEVELS}, got {gate_level!r}')
        if temperature <= 0 or gate_temperature <= 0:
            raise ValueError('temperature and gate_temperature must be positive')
        self.loss_fg_weight = loss_fg_weight
        self.loss_bg_weight = loss_bg_weight
        self.temperature = temperature
        self.gate = gate
        self.gate_temperature = gate_temperature
        self.gate_level = gate_level

    def level_maps(self) -> List[Dict[str, Tensor]]:
        """Per-level masks, gates and per-location losses of the last recorded step.

        Returns:
            One dict per feature level with (N, H, W) tensors at the teacher's resolution:
            ``fg_weight`` (scale-aware foreground weight, 0 on background), ``fg_gate``,
            ``fg_distance`` (``1 - cos``, attached to the student's graph) and, with a dense
            head, ``bg_gate`` and ``bg_kl`` (attached). The visualizer draws these.
        """
        student_feats = self.record('feats', from_student=True)
        teacher_feats = self.record('feats', from_student=False)
        batch_inputs = self.record('batch', from_student=True, data_idx=0)
        data_samples = self.record('batch', from_student=True, data_idx=1)
        head_spec = self.head_spec
        if head_spec is not None:
            student_cls = self.record('head', from_student=True)[0]
            teacher_cls = self.record('head', from_student=False)[0]
        boxes = [ds.gt_instances.bboxes for ds in data_samples]
        labels = [ds.gt_instances.labels for ds in data_samples]
        if head_spec is not None and head_spec[2] == 'rpn_head':
            labels = [torch.zeros_like(lbl) for lbl in labels]  # objectness is one class
        input_h, input_w = batch_inputs.shape[-2:]

        maps, labels_per_level, objects_per_level, probs_per_level = [], [], [], []
        for level, (s_feat, t_feat) in enumerate(zip(student_feats, teacher_feats)):
            t_feat = t_feat.detach()
            s_feat = resize_to(self.feature_connectors[level](s_feat), t_feat)
            feat_shape = tuple(t_feat.shape[-2:])
            stride = (input_h / feat_shape[0], input_w / feat_shape[1])
            fg_weight, fg_label, fg_object = batch_scale_aware_foreground(
                boxes, labels, feat_shape, stride, return_index=True)
            labels_per_level.append(fg_label)
            objects_per_level.append(fg_object)
            level_map = dict(fg_weight=fg_weight, fg_distance=cosine_distance_map(s_feat, t_feat))
            if head_spec is not None:
                cls_out_channels, use_sigmoid, _ = head_spec
                t_logits = teacher_cls[level].detach()
                s_logits = resize_to(student_cls[level], t_logits)
                with torch.no_grad():
                    probs_per_level.append(
                        (dense_class_probs(t_logits, cls_out_channels, use_sigmoid),
                         dense_class_probs(s_logits, cls_out_channels, use_sigmoid)))
                n, channels, h, w = s_logits.shape
                per_anchor = (n, channels // cls_out_channels, cls_out_channels, h, w)
                level_map['bg_kl'] = prediction_kl(
                    s_logits.view(per_anchor).permute(0, 1, 3, 4, 2),
                    t_logits.view(per_anchor).permute(0, 1, 3, 4, 2),
                    use_sigmoid, self.temperature).mean(dim=1)
            maps.append(level_map)

        if head_spec is None:
            for level_map in maps:
                level_map['fg_gate'] = torch.ones_like(level_map['fg_weight'])
            return maps
        with torch.no_grad():
            fg_gates = self._foreground_gates(probs_per_level, labels_per_level,
                                              objects_per_level, sum(len(b) for b in boxes))
            for level_map, fg_gate, (t_probs, s_probs) in zip(maps, fg_gates, probs_per_level):
                level_map['fg_gate'] = fg_gate
                level_map['bg_gate'] = self._gate(background_score(t_probs, head_spec[1]),
                                                  background_score(s_probs, head_spec[1]))
        return maps

    def compute_distill_losses(self) -> Dict[str, Tensor]:
        """Distillation losses and gate statistics of the last recorded step.

        Each level's foreground term is normalised by that level's (ungated) foreground weight
        and its background term by that level's background cell count; levels are averaged, so
        no level dominates and a closed gate shrinks the loss rather than re-weighting.

        Returns:
            ``loss_fg_cos`` and ``loss_bg_kl`` (weighted, summed into the total loss), and the
            logged-only ``fg_gate_ratio`` / ``bg_gate_ratio``: fraction of foreground/background
            cells where the teacher guides.
        """
        fg_terms, bg_terms = [], []
        fg_open = fg_total = bg_open = bg_total = 0.0
        for level_map in self.level_maps():
            fg_weight, fg_gate = level_map['fg_weight'], level_map['fg_gate']
            fg_mask = fg_weight > 0
            fg_terms.append((level_map['fg_distance'] * fg_weight * fg_gate).sum() /
                            fg_weight.sum().clamp(min=1e-12))
            fg_open += float((fg_mask * fg_gate).sum())
            fg_total += float(fg_mask.sum())
            if 'bg_kl' in level_map:
                bg_mask = ~fg_mask
                bg_weight = bg_mask * level_map['bg_gate']
                bg_terms.append((level_map['bg_kl'] * bg_weight).sum() /
                                bg_mask.sum().clamp(min=1))
                bg_open += float(bg_weight.sum())
                bg_total += float(bg_mask.sum())

        device = fg_terms[0].device
        losses = dict(loss_fg_cos=self.loss_fg_weight * torch.stack(fg_terms).mean())
        losses['fg_gate_ratio'] = torch.tensor(fg_open / max(fg_total, 1.0), device=device)
        if bg_terms:
            losses['loss_bg_kl'] = self.loss_bg_weight * torch.stack(bg_terms).mean()
            losses['bg_gate_ratio'] = torch.tensor(bg_open / max(bg_total, 1.0), device=device)
        return losses

    def _gate(self, teacher_score: Tensor, student_score: Tensor) -> Tensor:
        """Teacher-better gate of the configured mode on matching score tensors."""
        if self.gate == 'off':
            return torch.ones_like(teacher_score)
        return teacher_better_gate(teacher_score, student_score, self.gate == 'soft',
                                   self.gate_temperature)

    def _foreground_gates(self, probs_per_level: List[Tuple[Tensor, Tensor]],
                          labels_per_level: List[Tensor], objects_per_level: List[Tensor],
                          num_objects: int) -> List[Tensor]:
        """(N, H, W) foreground gate per level from (N, A, K, H, W) teacher/student probabilities.

        ``gate_level='location'`` compares the GT-class probability cell by cell;
        ``'object'`` compares each object's best GT-class probability over all its cells and
        levels, and opens or closes the gate for the whole object.
        """
        teacher_scores = [gt_class_score(t, lbl) for (t, _), lbl in
                          zip(probs_per_level, labels_per_level)]
        student_scores = [gt_class_score(s, lbl) for (_, s), lbl in
                          zip(probs_per_level, labels_per_level)]
        if self.gate_level == 'location':
            return [self._gate(t, s) for t, s in zip(teacher_scores, student_scores)]
        object_gate = self._gate(
            object_max_score(teacher_scores, objects_per_level, num_objects),
            object_max_score(student_scores, objects_per_level, num_objects))
        return spread_object_values(object_gate, objects_per_level)
