"""Confidence-guided soft-label distillation: the teacher's confidence makes the soft labels and
picks the regions, so no ground truth is needed and unlabeled images teach too."""
import numbers
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmrazor.registry import MODELS
from torch import Tensor

from kd_det.models.losses.box_distill import giou_distance
from kd_det.models.losses.feature_imitation import standardized_feature_distance
from kd_det.models.losses.prediction_kl import softmax_kl
from kd_det.models.losses.soft_label import confidence_temperature, soft_label_loss
from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
from kd_det.models.utils.align import resize_to
from kd_det.models.utils.arg_checks import (DistillConfigError, check_bool, check_choice,
                                            check_number, check_weight, describe, did_you_mean,
                                            distiller_key)
from kd_det.models.utils.confidence import (location_confidence, prediction_discrepancy,
                                            teacher_reliability)
from kd_det.models.utils.dense_boxes import box_distributions, decode_dense_boxes
from kd_det.models.utils.gates import dense_class_probs
from kd_det.models.utils.head_outputs import dense_predictions
from kd_det.models.utils.hard_samples import (balance_weights, geometric_balance_weights,
                                              hard_sample_scores, weight_statistics)
from kd_det.models.utils.region_selection import (REGION_MODES, REGION_UNITS,
                                                  select_region_anchors)
from .dense_distiller_base import DenseDetectionDistiller

BOX_LOSSES = ('auto', 'giou', 'distribution_kl', 'none')
FEAT_LOSSES = ('conf_spatial_kl', 'standardized_region')
WEIGHT_NORMS = ('geometric', 'mean_clamp')


@MODELS.register_module()
class ConfidenceSoftLabelDistiller(DenseDetectionDistiller):
    """Soft labels, confident regions and hard-sample weights from the teacher's confidence.

    Per anchor the teacher's **confidence** is its highest class probability, combined with its
    localisation-quality branch where the head has one (FCOS/ATSS/AutoAssign centerness, PAA/
    DDOD IoU, YOLOX objectness: ``p^(1-a) * q^a``; the scores of GFL, RTMDet, VFNet and TOOD
    already are IoU-aware, RetinaNet has none). Three terms follow, none of which
    reads the ground truth, so they work on unlabeled images:

    - **soft-label classification** on every anchor: the student's classifier is trained toward
      the teacher's probabilities with a focal-style soft BCE (sigmoid heads) or a softmax KL
      (softmax heads). With ``label_sharpening = s > 0`` the teacher's logits of anchor ``a``
      are divided by ``T_a = T * (1 - s * confidence_a)`` instead of ``T`` (the student's by
      ``T``), so the target approaches a hard label where the teacher is sure and stays soft
      where it is not. Region anchors are re-weighted (below), the rest keep weight 1; the sum
      is divided by the number of region anchors (at least the batch size), like a detector
      divides by its positives;
    - **box distillation** on the region anchors: ``1 - GIoU`` between the boxes student and
      teacher decode with their own heads (delta coders: RetinaNet/ATSS; distance coders:
      FCOS), or the KL between the box distributions of GFL-type heads (LD), weighted by the
      region weights;
    - **feature imitation** on every FPN level both necks have (levels are matched by stride,
      see :class:`DenseDetectionDistiller`). ``feat_loss='conf_spatial_kl'``: the
      channel-wise spatial distribution KL of CWD (Shu et al., ICCV 2021;
      :func:`channel_spatial_kl`) on the whole map, with the bias
      ``feat_conf_bias * log1p(cell confidence)`` added to student and teacher alike (a fully
      confident cell at most doubles its share of every channel for a bias of 1, and the
      optimum stays student = teacher); per level the mean over images and channels, summed
      over levels as in CWD. ``feat_loss='standardized_region'`` (v1): the standardised
      feature distance (:func:`standardized_feature_distance`) on the cells of region anchors,
      weighted by their mean region weight, normalised per level and averaged over the levels
      that hold a region.

    **Regions** (``region_unit='anchor'``) are the anchors whose own confidence passes
    ``region_thr`` (``region='threshold'``) or the ``region_topk`` fraction of most confident
    anchors per image over all levels (``region='topk'``). With ``region_unit='cell'`` (v1) the
    cells are selected by their best anchor and every anchor of a selected cell is in the
    region, including anchors the teacher never trained as positives.

    **Adaptive hard-sample weights** on the region anchors: scores ``reliability^tp *
    (discrepancy + eps)^sp``, where reliability is the confidence times the class margin (low
    for unsure or ambiguous teachers: teacher-hard samples get less weight) and discrepancy
    ``max_k |p_s - p_t|`` (student-hard samples get more); with ``hard_weighting=False`` the
    scores are the plain confidences. ``weight_norm='geometric'``: ``w = (score /
    geomean(score)) ** weight_power`` over the batch's region anchors; ``'mean_clamp'`` (v1):
    ``score / mean(score)``; both clamped to ``[weight_min, weight_max]``.

    Logged, not summed into the loss (keys without ``loss``): ``region_ratio``,
    ``region_confidence``, ``feat_level{i}``, ``hard_weight_{mean,min,max,img_min,img_max}``
    and ``hard_weight_at_{min,max}`` (see :meth:`compute_distill_losses`).

    The student's FPN levels go through the base class's per-level connectors and are resized
    to the teacher's grid; student head outputs are resized the same way.

    Every option that changed from v1 to v2 keeps v1 as a value: ``region_unit='cell',
    feat_loss='standardized_region', weight_norm='mean_clamp', label_sharpening=0.0,
    loss_feat_weight=1.0`` reproduce v1 exactly.

    Args:
        loss_cls_weight (float): weight of the soft-label classification term. Defaults to 1.0.
        loss_box_weight (float): weight of the box term. Defaults to 1.0.
        loss_feat_weight (float, optional): weight of the feature term; None means 10.0 for
            ``'conf_spatial_kl'`` (CWD's RetinaNet setting: 10 per level, levels summed) and
            1.0 for ``'standardized_region'`` (v1). Defaults to None.
        temperature (float): ``T`` of the soft labels (and of the box-distribution KL).
            Defaults to 1.0.
        focal_gamma (float): focusing exponent of the soft BCE. Defaults to 2.0.
        quality_branch (str | int | None): ``'auto'`` uses the teacher head's quality output
            where it has one (:class:`~kd_det.models.utils.head_outputs.HeadOutputs`), an int
            picks that head output as quality logits, None ignores any quality branch.
            Defaults to ``'auto'``.
        quality_power (float): ``a`` in ``p^(1-a) * q^a``, in [0, 1]. Defaults to 0.5.
        region_unit (str): ``'anchor'`` (each anchor by its own confidence) or ``'cell'``
            (v1: cells by their best anchor, spread to all their anchors).
            Defaults to ``'anchor'``.
        region (str): ``'threshold'`` or ``'topk'``. Defaults to ``'threshold'``.
        region_thr (float): confidence threshold of the regions, in [0, 1]. Defaults to 0.5.
        region_topk (float): fraction in (0, 1] of the anchors (``region_unit='anchor'``) or
            cells (``'cell'``) per image kept in top-k mode. Defaults to 0.01.
        box_loss (str): ``'auto'`` (distribution KL when both heads are GFL-type with the same
            ``reg_max``, else GIoU), ``'giou'``, ``'distribution_kl'`` or ``'none'``.
            Defaults to ``'auto'``.
        feat_loss (str): ``'conf_spatial_kl'`` or ``'standardized_region'`` (v1).
            Defaults to ``'conf_spatial_kl'``.
        feat_conf_bias (float): scale of the ``log1p(cell confidence)`` bias of
            ``'conf_spatial_kl'`` (0: plain CWD). Defaults to 1.0.
        feat_temperature (float): temperature of ``'conf_spatial_kl'``. Defaults to 1.0.
        label_sharpening (float): ``s`` in [0, 1) of the teacher's per-anchor temperature
            ``T * (1 - s * confidence)``; 0 (v1) keeps ``T`` everywhere. Defaults to 0.5.
        hard_weighting (bool): adaptive hard-sample weights (True) or confidence weights.
            Defaults to True.
        teacher_power (float): exponent ``tp`` of the teacher reliability. Defaults to 1.0.
        student_power (float): exponent ``sp`` of the discrepancy. Defaults to 1.0.
        discrepancy_eps (float): ``eps`` added to the discrepancy. Defaults to 0.1.
        weight_norm (str): ``'geometric'`` or ``'mean_clamp'`` (v1). Defaults to
            ``'geometric'``.
        weight_power (float): compression exponent of ``'geometric'``. Defaults to 0.5.
        weight_min (float): lower bound of a weight, in [0, 1]. Defaults to 0.25.
        weight_max (float): upper bound of a weight, >= 1. Defaults to 4.0.
        neck_source, head_source: see :class:`DenseDetectionDistiller`; a dense head with
            class outputs is required (``head_source='none'`` is refused).

    Loss weights are numbers >= 0, temperatures, ``weight_power`` and ``discrepancy_eps`` > 0,
    ``focal_gamma``, ``feat_conf_bias`` and the powers >= 0; a wrong type or value fails when
    the distiller is built, naming the ``model.distiller.<key>``.
    """

    def __init__(self,
                 loss_cls_weight: float = 1.0,
                 loss_box_weight: float = 1.0,
                 loss_feat_weight: Optional[float] = None,
                 temperature: float = 1.0,
                 focal_gamma: float = 2.0,
                 quality_branch: Union[str, int, None] = 'auto',
                 quality_power: float = 0.5,
                 region_unit: str = 'anchor',
                 region: str = 'threshold',
                 region_thr: float = 0.5,
                 region_topk: float = 0.01,
                 box_loss: str = 'auto',
                 feat_loss: str = 'conf_spatial_kl',
                 feat_conf_bias: float = 1.0,
                 feat_temperature: float = 1.0,
                 label_sharpening: float = 0.5,
                 hard_weighting: bool = True,
                 teacher_power: float = 1.0,
                 student_power: float = 1.0,
                 discrepancy_eps: float = 0.1,
                 weight_norm: str = 'geometric',
                 weight_power: float = 0.5,
                 weight_min: float = 0.25,
                 weight_max: float = 4.0,
                 **kwargs):
        key = distiller_key
        for name, value, allowed in (('region_unit', region_unit, REGION_UNITS),
                                     ('region', region, REGION_MODES),
                                     ('box_loss', box_loss, BOX_LOSSES),
                                     ('feat_loss', feat_loss, FEAT_LOSSES),
                                     ('weight_norm', weight_norm, WEIGHT_NORMS)):
            check_choice(key(name), value, allowed)
        for name, value in (('loss_cls_weight', loss_cls_weight),
                            ('loss_box_weight', loss_box_weight)):
            check_weight(key(name), value)
        check_weight(key('loss_feat_weight'), loss_feat_weight, optional=True)
        for name, value in (('temperature', temperature), ('feat_temperature', feat_temperature),
                            ('weight_power', weight_power),
                            ('discrepancy_eps', discrepancy_eps)):
            check_number(key(name), value, low=0.0, low_inclusive=False)
        for name, value in (('focal_gamma', focal_gamma), ('feat_conf_bias', feat_conf_bias),
                            ('teacher_power', teacher_power), ('student_power', student_power)):
            check_number(key(name), value, low=0.0)
        for name, value in (('quality_power', quality_power), ('region_thr', region_thr)):
            check_number(key(name), value, low=0.0, high=1.0)
        check_number(key('region_topk'), region_topk, low=0.0, high=1.0, low_inclusive=False,
                     why='the fraction of anchors (or cells) per image kept')
        check_number(key('label_sharpening'), label_sharpening, low=0.0, high=1.0,
                     high_inclusive=False,
                     why='0 keeps the soft labels of v1; 1 would divide by zero')
        check_number(key('weight_min'), weight_min, low=0.0, high=1.0,
                     why='weights are normalised to mean 1, so the lower bound is at most 1')
        check_number(key('weight_max'), weight_max, low=1.0,
                     why='weights are normalised to mean 1, so the upper bound is at least 1')
        check_bool(key('hard_weighting'), hard_weighting)
        _check_quality_branch(quality_branch)
        if kwargs.get('head_source') == 'none':
            raise DistillConfigError(
                f"{key('head_source')}='none': ConfidenceSoftLabelDistiller builds its soft "
                "labels and regions from the teacher's class confidences, so it needs both dense "
                "heads. Fix: head_source='auto', or DecoupledCosineDistiller with "
                "head_source='none' to distil features only")
        super().__init__(**kwargs)
        if loss_feat_weight is None:
            loss_feat_weight = 10.0 if feat_loss == 'conf_spatial_kl' else 1.0
        self.loss_cls_weight = loss_cls_weight
        self.loss_box_weight = loss_box_weight
        self.loss_feat_weight = loss_feat_weight
        self.temperature = temperature
        self.focal_gamma = focal_gamma
        self.quality_branch = quality_branch
        self.quality_power = quality_power
        self.region_unit = region_unit
        self.region = region
        self.region_thr = region_thr
        self.region_topk = region_topk
        self.box_loss = box_loss
        self.feat_loss = feat_loss
        self.feat_conf_bias = feat_conf_bias
        self.feat_temperature = feat_temperature
        self.label_sharpening = label_sharpening
        self.hard_weighting = hard_weighting
        self.teacher_power = teacher_power
        self.student_power = student_power
        self.discrepancy_eps = discrepancy_eps
        self.weight_norm = weight_norm
        self.weight_power = weight_power
        self.weight_min = weight_min
        self.weight_max = weight_max
        # plain dict, not a submodule: the heads already belong to the student and the teacher
        self._heads: Dict[str, torch.nn.Module] = {}

    # ---- wiring ---------------------------------------------------------------------------------
    def prepare_from_student(self, model) -> None:
        super().prepare_from_student(model)
        self._heads['student'] = self._dense_head(model, 'student')

    def prepare_from_teacher(self, model) -> None:
        super().prepare_from_teacher(model)
        self._heads['teacher'] = self._dense_head(model, 'teacher')

    def _dense_head(self, model, role: str):
        info = self.head_outputs(role)
        if info is None:
            raise ValueError(f'{type(self).__name__} needs a dense head on the {role} '
                             f'({type(model).__name__} has none found with head_source='
                             f'{self.head_source!r}): the teacher confidence comes from it')
        return getattr(model, info.head_name)

    def _quality_index(self) -> Optional[int]:
        """The teacher output read as quality logits: its quality branch for ``'auto'`` (None
        for heads without one, e.g. RTMDet, GFL, RetinaNet), else ``quality_branch``."""
        if self.quality_branch == 'auto':
            return self.head_outputs('teacher').quality_index
        return self.quality_branch

    def _box_mode(self) -> str:
        if self.box_loss != 'auto':
            return self.box_loss
        infos = [self.head_outputs(role) for role in ('student', 'teacher')]
        kinds = {info.box_encoding for info in infos}
        if kinds == {'distribution'} and len(
                {self._heads[role].reg_max for role in ('student', 'teacher')}) == 1:
            return 'distribution_kl'
        if None in kinds:
            names = [info.head_type for info in infos if info.box_encoding is None]
            raise ValueError(f'box distillation cannot decode the boxes of {names} (kd_det '
                             'decodes delta, distance, distribution, TOOD and YOLOX box '
                             "outputs); set the distiller's box_loss='none'")
        return 'giou'

    # ---- per-location analysis ------------------------------------------------------------------
    def _analyse(self) -> dict:
        """Everything the losses and the pictures need, from the last recorded step.

        Returns a dict with per-level lists (N = images, A = anchors, (H, W) = the teacher's
        grid of that level): ``confidence`` and ``region`` (N, A, H, W), ``cell_confidence``
        (N, H, W), ``unit_confidence`` / ``unit_region`` (the same per selection unit: anchors,
        or cells for ``region_unit='cell'``), ``cls_loss`` (N, A, H, W, attached),
        ``feat_distance`` (N, H, W, attached; ``'standardized_region'``) or ``feat_kl``
        (N, C, attached; ``'conf_spatial_kl'``), ``box_distance`` (N, A, H, W, attached, or
        None), and flat (N, M) ``region_mask`` / ``region_weight`` over all levels' anchors.
        """
        info = self.head_outputs('student')
        cls_out_channels, use_sigmoid = info.cls_out_channels, info.use_sigmoid
        student_feats = self.matched_feats(from_student=True)
        teacher_feats = self.matched_feats(from_student=False)
        quality_index = self._quality_index()
        num_outputs = len(self.record('head', from_student=False))
        if quality_index is not None and quality_index >= num_outputs:
            raise DistillConfigError(
                f"{distiller_key('quality_branch')}={quality_index}, but the teacher's "
                f'{type(self._heads["teacher"]).__name__} has {num_outputs} outputs '
                f"(0: class logits, 1: boxes). Fix: set {distiller_key('quality_branch')} to the "
                "index of its quality output, 'auto' or None")
        student_head = self.matched_predictions(from_student=True)
        teacher_head = self.matched_predictions(from_student=False, quality_index=quality_index)

        confidences, cell_confidences, cls_losses, reliabilities, discrepancies = [], [], [], [], []
        for level, (s_logits, t_logits) in enumerate(zip(student_head.cls_logits,
                                                         teacher_head.cls_logits)):
            t_logits = t_logits.detach()
            s_logits = resize_to(s_logits, t_logits)
            if s_logits.shape[1] != t_logits.shape[1]:
                raise ValueError(
                    f'level {level}: the student predicts {s_logits.shape[1]} class channels '
                    f'per location, the teacher {t_logits.shape[1]}; soft labels need the same '
                    'anchors per location (same anchor generator) in both heads')
            with torch.no_grad():
                t_probs = dense_class_probs(t_logits, cls_out_channels, use_sigmoid)
                s_probs = dense_class_probs(s_logits.detach(), cls_out_channels, use_sigmoid)
                quality = None if teacher_head.quality_logits is None else \
                    teacher_head.quality_logits[level].detach()
                confidence = location_confidence(t_probs, use_sigmoid, quality,
                                                 self.quality_power)
                reliabilities.append(teacher_reliability(t_probs, confidence, use_sigmoid))
                discrepancies.append(prediction_discrepancy(s_probs, t_probs))
                target_temperature = None if self.label_sharpening == 0 else \
                    confidence_temperature(confidence, self.temperature, self.label_sharpening)
            n, channels, h, w = s_logits.shape
            per_anchor = (n, channels // cls_out_channels, cls_out_channels, h, w)
            cls_losses.append(soft_label_loss(
                s_logits.view(per_anchor).permute(0, 1, 3, 4, 2),
                t_logits.view(per_anchor).permute(0, 1, 3, 4, 2), use_sigmoid,
                self.focal_gamma, self.temperature, target_temperature))
            confidences.append(confidence)
            cell_confidences.append(confidence.amax(dim=1))

        regions = select_region_anchors(confidences, self.region_unit, self.region,
                                        self.region_thr, self.region_topk)
        region_mask = _flat(regions)
        if self.hard_weighting:
            scores = hard_sample_scores(_flat(reliabilities), _flat(discrepancies),
                                        self.teacher_power, self.student_power,
                                        self.discrepancy_eps)
        else:
            scores = _flat(confidences)
        if self.weight_norm == 'geometric':
            region_weight = geometric_balance_weights(scores, region_mask, self.weight_power,
                                                      self.weight_min, self.weight_max)
        else:
            region_weight = balance_weights(scores, region_mask, self.weight_min,
                                            self.weight_max)
        if self.region_unit == 'cell':
            unit_confidence, unit_region = cell_confidences, [r.any(dim=1) for r in regions]
        else:
            unit_confidence, unit_region = confidences, regions

        maps = dict(confidence=confidences, cell_confidence=cell_confidences, region=regions,
                    unit_confidence=unit_confidence, unit_region=unit_region,
                    cls_loss=cls_losses,
                    box_distance=self._box_distances(student_head.bbox_preds,
                                                     teacher_head.bbox_preds),
                    region_mask=region_mask, region_weight=region_weight)
        aligned = []
        for level, (s_feat, t_feat) in enumerate(zip(student_feats, teacher_feats)):
            t_feat = t_feat.detach()
            aligned.append((resize_to(self.feature_connectors[level](s_feat), t_feat), t_feat))
        if self.feat_loss == 'standardized_region':
            maps['feat_distance'] = [standardized_feature_distance(s_feat, t_feat)
                                     for s_feat, t_feat in aligned]
        else:
            maps['feat_kl'] = self._confidence_spatial_kl(aligned, cell_confidences)
        return maps

    def _confidence_spatial_kl(self, aligned: List[tuple],
                               cell_confidences: List[Tensor]) -> List[Tensor]:
        """Per level (N, C) spatial KL of (student, teacher) (N, C, H, W) features, biased
        by ``feat_conf_bias * log1p`` of the (N, H, W) cell confidence."""
        if len(aligned) != len(cell_confidences):
            raise ValueError(
                f"feat_loss='conf_spatial_kl' needs the teacher's head on the feature levels it "
                f'distills: neck_source={self.neck_source!r} gives {len(aligned)} levels, the '
                f'head predicts on {len(cell_confidences)}')
        kls = []
        for level, ((s_feat, t_feat), cell_conf) in enumerate(zip(aligned, cell_confidences)):
            if t_feat.shape[-2:] != cell_conf.shape[-2:]:
                raise ValueError(
                    f'level {level}: teacher features are {tuple(t_feat.shape[-2:])}, its head '
                    f'predicts on {tuple(cell_conf.shape[-2:])}; the confidence bias needs the '
                    'feature level the head reads (check neck_source)')
            bias = self.feat_conf_bias * torch.log1p(cell_conf)
            kls.append(channel_spatial_kl(s_feat, t_feat, bias=bias,
                                          temperature=self.feat_temperature))
        return kls

    def _box_distances(self, student_boxes: List[Tensor],
                       teacher_boxes: List[Tensor]) -> Optional[List[Tensor]]:
        """Per level (N, A, H, W) box distances on the teacher's grid, or None."""
        mode = self._box_mode()
        if mode == 'none':
            return None
        if mode == 'distribution_kl':
            reg_max = self._heads['teacher'].reg_max
            distances = []
            for s_pred, t_pred in zip(student_boxes, teacher_boxes):
                t_dist = box_distributions(t_pred.detach(), reg_max)
                s_dist = box_distributions(resize_to(s_pred, t_pred), reg_max)
                # (N, A, 4, R+1, H, W) -> (N, A, H, W, 4, R+1); KL summed over the 4 sides
                kl = softmax_kl(s_dist.permute(0, 1, 4, 5, 2, 3),
                                t_dist.permute(0, 1, 4, 5, 2, 3), self.temperature)
                distances.append(kl.sum(dim=-1))
            return distances
        with torch.no_grad():
            t_decoded = self._best_prior_boxes(decode_dense_boxes(
                self._heads['teacher'], [p.detach() for p in teacher_boxes],
                self.matched_levels(from_student=False)), from_student=False)
        s_decoded = self._best_prior_boxes(decode_dense_boxes(
            self._heads['student'], student_boxes, self.matched_levels(from_student=True)),
            from_student=True)
        distances = []
        for s_box, t_box in zip(s_decoded, t_decoded):
            n, a, _, h, w = t_box.shape
            s_box = resize_to(s_box.flatten(1, 2), t_box.flatten(1, 2)).view(n, -1, 4, h, w)
            if s_box.shape[1] != a:
                raise ValueError(f'the student decodes {s_box.shape[1]} boxes per location, '
                                 f'the teacher {a}; use the same anchors in both heads')
            distances.append(giou_distance(s_box.permute(0, 1, 3, 4, 2),
                                           t_box.permute(0, 1, 3, 4, 2)))
        return distances

    def _best_prior_boxes(self, boxes: List[Tensor], from_student: bool) -> List[Tensor]:
        """Per level (N, A, 4, H, W) boxes, reduced to (N, 1, 4, H, W) at each location's most
        confident prior when the two heads have a different number of priors per location."""
        info = self.head_outputs('student' if from_student else 'teacher')
        if not self.per_location or info.num_priors == 1:
            return boxes
        raw = dense_predictions(info, self.record('head', from_student),
                                self.matched_levels(from_student))
        reduced = []
        for level_boxes, logits in zip(boxes, raw.cls_logits):
            n, _, h, w = logits.shape
            score = logits.detach().view(n, info.num_priors, -1, h, w).amax(dim=2)
            best = score.argmax(dim=1)[:, None, None].expand(n, 1, 4, h, w)  # (N, 1, 4, H, W)
            reduced.append(level_boxes.gather(1, best))
        return reduced

    # ---- losses ---------------------------------------------------------------------------------
    def compute_distill_losses(self, image_weights: Optional[Tensor] = None
                               ) -> Dict[str, Tensor]:
        """Distillation losses and confidence/weight statistics of the last recorded step.

        Args:
            image_weights: (N,) factor of each image's share of every distillation term (the
                labeled/unlabeled balance of :class:`SemiSupervisedDetectionDistill`), or
                None for 1 everywhere. The normalisers do not change: a factor of 2 counts the
                image twice.

        Returns:
            ``loss_soft_cls``, ``loss_soft_box`` (unless ``box_loss='none'``) and
            ``loss_conf_feat`` (weighted, summed into the total loss), and the logged-only
            ``region_ratio`` (fraction of anchors, or of cells for ``region_unit='cell'``, in
            the region), ``region_confidence`` (their mean teacher confidence),
            ``feat_level{i}`` (level i's share of ``loss_conf_feat``; they add up to it),
            ``hard_weight_{mean,min,max,img_min,img_max}`` and ``hard_weight_at_{min,max}``
            (fraction of region anchors at ``weight_min`` / ``weight_max``).
        """
        maps = self._analyse()
        region_mask, region_weight = maps['region_mask'], maps['region_weight']
        n = region_mask.shape[0]
        image_factor = _image_factors(image_weights, n, region_weight)  # (N, 1)

        # classification: region anchors re-weighted, every other anchor weight 1
        cls_weight = torch.where(region_mask, region_weight, torch.ones_like(region_weight))
        cls_loss = _flat(maps['cls_loss'])
        avg_factor = max(float(region_mask.sum()), float(n))
        losses = dict(loss_soft_cls=self.loss_cls_weight *
                      (cls_loss * cls_weight * image_factor).sum() / avg_factor)

        if maps['box_distance'] is not None:
            box = _flat(maps['box_distance'])
            losses['loss_soft_box'] = self.loss_box_weight * (
                box * region_weight * image_factor).sum() / region_weight.sum().clamp(min=1e-12)

        losses['loss_conf_feat'], level_shares = self._feature_term(maps, image_factor)
        for level, share in enumerate(level_shares):
            losses[f'feat_level{level}'] = share

        units = sum(r.numel() for r in maps['unit_region'])
        selected = sum(float(r.sum()) for r in maps['unit_region'])
        device = region_mask.device
        losses['region_ratio'] = torch.tensor(selected / max(units, 1), device=device)
        region_conf = torch.cat([c[r] for c, r in zip(maps['unit_confidence'],
                                                      maps['unit_region'])])
        losses['region_confidence'] = region_conf.mean() if region_conf.numel() else \
            torch.zeros((), device=device)
        bounds = (self.weight_min, self.weight_max)
        for key, value in weight_statistics(region_weight, region_mask, bounds).items():
            losses[f'hard_weight_{key}'] = value.detach()
        return losses

    def _feature_term(self, maps: dict, image_factor: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """``loss_conf_feat`` (0-dim, attached) and each level's detached share of it;
        ``image_factor`` (N, 1) scales each image's part."""
        if self.feat_loss == 'conf_spatial_kl':
            # CWD: mean over images and channels per level, summed over levels
            terms = [self.loss_feat_weight * (kl * image_factor).mean()
                     for kl in maps['feat_kl']]
            return torch.stack(terms).sum(), [term.detach() for term in terms]
        # v1: per level the cell weight is the mean region weight of its anchors, normalised
        # per level, averaged over the levels that hold a region
        level_weights = _unflat(maps['region_weight'], maps['confidence'])
        terms = []
        for distance, weight in zip(maps['feat_distance'], level_weights):
            cell_weight = weight.mean(dim=1)
            terms.append((distance * cell_weight * image_factor[..., None]).sum() /
                         cell_weight.sum()
                         if cell_weight.sum() > 0 else None)
        present = [term for term in terms if term is not None]
        zero = maps['feat_distance'][0].sum() * 0.0
        if not present:
            return self.loss_feat_weight * zero, [zero.detach() for _ in terms]
        shares = [zero.detach() if term is None else
                  self.loss_feat_weight * term.detach() / len(present) for term in terms]
        return self.loss_feat_weight * torch.stack(present).mean(), shares

    def confidence_maps(self) -> List[Dict[str, Tensor]]:
        """Per-level maps of the last recorded step, for pictures.

        Returns:
            One dict per level with (N, H, W) tensors on the teacher's grid: ``confidence``
            (best anchor), ``region`` (bool: the cell holds a region anchor) and ``weight``
            (mean region weight of the cell's region anchors, 0 outside the regions).
        """
        with torch.no_grad():
            maps = self._analyse()
        weights = _unflat(maps['region_weight'], maps['confidence'])
        results = []
        for conf, region, weight in zip(maps['cell_confidence'], maps['region'], weights):
            count = region.sum(dim=1)
            results.append(dict(confidence=conf, region=region.any(dim=1),
                                weight=weight.sum(dim=1) / count.clamp(min=1)))
        return results


def _check_quality_branch(value) -> None:
    """``quality_branch`` is ``'auto'``, None or the index (an int >= 0) of a head output."""
    if value is None or value == 'auto' or (
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0):
        return
    key = distiller_key('quality_branch')
    close = did_you_mean(value, ['auto']) if isinstance(value, str) else None
    fix = f"set {key}='auto'" if close else \
        f"set {key}='auto' (the head's quality output, if any), None (no quality branch) or " \
        "the index of the teacher head's output that holds quality logits (2 for FCOS: cls, " \
        "bbox, centerness)"
    raise DistillConfigError(f"{key} must be 'auto', None or an int >= 0, got "
                             f'{describe(value)}. Fix: {fix}')


def _image_factors(image_weights: Optional[Tensor], num_images: int, like: Tensor) -> Tensor:
    """(N, 1) per-image factors from (N,) ``image_weights`` (None: ones), as ``like``."""
    if image_weights is None:
        return torch.ones(num_images, 1, dtype=like.dtype, device=like.device)
    if image_weights.shape != (num_images,):
        raise ValueError(f'image_weights must have shape ({num_images},), one factor per '
                         f'image of the batch, got {tuple(image_weights.shape)}')
    return image_weights.detach().to(like)[:, None]


def _flat(per_level: List[Tensor]) -> Tensor:
    """Per-level (N, ...) tensors as one (N, M) tensor."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in per_level], dim=1)


def _unflat(flat: Tensor, like: List[Tensor]) -> List[Tensor]:
    """Inverse of :func:`_flat` with the shapes of ``like``."""
    sizes = [t[0].numel() for t in like]
    return [part.reshape(t.shape) for part, t in zip(flat.split(sizes, dim=1), like)]
