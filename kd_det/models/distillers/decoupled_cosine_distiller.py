"""Decoupled foreground/background distillation with cosine features and a teacher-better gate."""
from typing import Dict, List, Optional, Tuple

import torch
from mmrazor.registry import MODELS
from torch import Tensor

from kd_det.models.losses.cosine_distance import cosine_distance_map
from kd_det.models.losses.prediction_kl import prediction_kl
from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
from kd_det.models.utils.align import resize_to
from kd_det.models.utils.arg_checks import (DistillConfigError, check_bool, check_choice,
                                            check_number, check_weight, distiller_key)
from kd_det.models.utils.dense_boxes import decode_dense_boxes
from kd_det.models.utils.gates import (background_score, dense_class_probs, gt_class_score,
                                       object_max_score, spread_object_values,
                                       teacher_better_gate)
from kd_det.models.utils.masks import batch_scale_aware_foreground
from kd_det.models.utils.object_regions import (assigned_levels, center_prior_cells,
                                                joint_object_weights, object_quality,
                                                pad_objects)
from .dense_distiller_base import DenseDetectionDistiller

GATE_MODES = ('hard', 'soft', 'off')
GATE_LEVELS = ('object', 'location')
GATE_QUALITIES = ('score_iou', 'score')
FG_MODES = ('assigned_center', 'all_levels')
BG_KL_MODES = ('spatial', 'bernoulli')
BG_GATES = ('off', 'teacher_better')
KL_REGIONS = ('background', 'whole_map')


@MODELS.register_module()
class DecoupledCosineDistiller(DenseDetectionDistiller):
    """Foreground cosine + background KL distillation, gated to where the teacher is better.

    **Foreground** (v2 and v3 default, ``fg_mode='assigned_center'``): each GT object is
    distilled on the FPN level where the teacher detects it best (its highest ``score x IoU``,
    i.e. where the teacher's assigner made it a positive), on the cells whose prior centre lies
    in the box, weighted by a Gaussian centre prior and normalised so that every object carries
    a total weight of 1 over its levels; the term is ``1 - cos(s, t)`` of the feature vectors
    (centred per channel with ``fg_center_features``), summed over objects and divided by their
    number.

    **Spatial distributions** (v3 default, ``kl_region='whole_map'``): two channel-wise
    spatial distribution KLs (CWD), summed over levels, one on the FPN features
    (``loss_bg_feat_weight``) and one on the classification logits, one distribution per anchor
    and class channel (``bg_kl='spatial'``). They cover every cell: a spatial softmax is a
    distribution over locations and the foreground cells hold most of the teacher's mass, so
    the KL teaches *where* objects stand out from the background (and carries signal where
    probabilities are tiny, in both directions: cells where the teacher fires more than the
    student and less), while the cosine fixes each foreground vector's direction. v2
    (``kl_region='background'``) restricted both KLs to the cells that are not foreground on
    their level, which cut the peaks out of every distribution.

    **Gate**: per object the teacher's and the student's best ``score x IoU`` over the object's
    cells (``gate_quality``) decide whether the teacher is better; the object's foreground
    weight is multiplied by ``gate_floor + (1 - gate_floor) * gate``, so a gate can attenuate
    the signal but not remove it. (``fg_mode='all_levels'`` keeps v1's gate: GT-class score,
    per object or per location, no floor.)

    v2 is v3 with ``kl_region='background'`` (``configs/decoupled_cosine/*_v2.py``). v1
    (kd_det <= 0.3) is ``fg_mode='all_levels'`` (scale-aware foreground on every level,
    per-level normalisation, levels averaged), ``bg_kl='bernoulli'`` (per-anchor Bernoulli KL,
    mean over anchors, background cells and levels), ``bg_gate='teacher_better'``,
    ``loss_bg_feat_weight=0``, ``fg_center_features=False``, ``gate_quality='score'``,
    ``gate_floor=0``, ``loss_bg_weight=1`` (the Bernoulli KL always covers the background);
    ``configs/decoupled_cosine/*_v1.py`` spells it out.

    Features, head outputs and GT are recorded automatically (see
    :class:`DenseDetectionDistiller`). Use it inside ``DetectionDistill`` (the teacher runs
    backbone + neck + head only) or mmrazor's ``SingleTeacherDistill``; not
    ``FpnTeacherDistill``, which skips the teacher's head.

    Args:
        loss_fg_weight (float): weight of the foreground cosine term. Defaults to 2.0.
        loss_bg_weight (float, optional): weight of the background prediction term. None: 10.0
            for ``bg_kl='spatial'`` (mmrazor's published CWD weight per level), 1.0 for
            ``'bernoulli'``. Defaults to None.
        loss_bg_feat_weight (float): weight of the background feature term (CWD's 10 per
            level); 0 switches it off (v1). Defaults to 10.0.
        temperature (float): temperature ``T`` of both background KLs. Defaults to 1.0.
        fg_mode (str): ``'assigned_center'`` or ``'all_levels'`` (v1). Defaults to
            ``'assigned_center'``.
        fg_center_features (bool): subtract each level's per-channel mean (over images and
            cells) from student and teacher features before the cosine, so a shared offset (a
            connector bias, post-ReLU positivity) cannot align the directions on its own.
            Defaults to True.
        center_sigma (float): width of the centre prior as a fraction of the box side.
            Defaults to 0.25.
        bg_kl (str): ``'spatial'`` or ``'bernoulli'`` (v1). Defaults to ``'spatial'``.
        kl_region (str): cells the two spatial KLs cover: ``'background'`` (every cell that
            is not foreground) or ``'whole_map'`` (every cell, as CWD). The v1 Bernoulli KL
            always covers the background. Defaults to ``'whole_map'`` (v3; v2 is
            ``'background'``).
        bg_gate (str): ``'off'`` (every background cell) or ``'teacher_better'`` (v1: only
            cells where the teacher is more sure of background than the student).
            Defaults to ``'off'``.
        gate (str): ``'hard'`` (0/1 where the teacher is better), ``'soft'``
            (``sigmoid((teacher - student) / gate_temperature)``) or ``'off'``.
            Defaults to ``'hard'``.
        gate_temperature (float): sharpness of the soft gate. Defaults to 0.1.
        gate_level (str): ``'object'`` or ``'location'`` (v1 only: cell by cell).
            Defaults to ``'object'``.
        gate_quality (str): ``'score_iou'`` (GT-class probability times the IoU of the
            anchor's decoded box with the GT box) or ``'score'`` (v1). Defaults to
            ``'score_iou'``; heads whose boxes kd_det cannot decode use the score.
        gate_floor (float): smallest weight a closed gate leaves, in [0, 1]. Defaults to 0.5.
        neck_source, head_source: see :class:`DenseDetectionDistiller`. Without a dense head
            only the feature terms run (foreground on every level, ungated).

    Loss weights are numbers >= 0, ``temperature``, ``gate_temperature`` and ``center_sigma``
    > 0; a wrong type or value fails when the distiller is built, naming the
    ``model.distiller.<key>``.
    """

    def __init__(self,
                 loss_fg_weight: float = 2.0,
                 loss_bg_weight: Optional[float] = None,
                 loss_bg_feat_weight: float = 10.0,
                 temperature: float = 1.0,
                 fg_mode: str = 'assigned_center',
                 fg_center_features: bool = True,
                 center_sigma: float = 0.25,
                 bg_kl: str = 'spatial',
                 kl_region: str = 'whole_map',
                 bg_gate: str = 'off',
                 gate: str = 'hard',
                 gate_temperature: float = 0.1,
                 gate_level: str = 'object',
                 gate_quality: str = 'score_iou',
                 gate_floor: float = 0.5,
                 **kwargs):
        key = distiller_key
        for name, value, allowed in (('fg_mode', fg_mode, FG_MODES), ('bg_kl', bg_kl, BG_KL_MODES),
                                     ('kl_region', kl_region, KL_REGIONS),
                                     ('bg_gate', bg_gate, BG_GATES), ('gate', gate, GATE_MODES),
                                     ('gate_level', gate_level, GATE_LEVELS),
                                     ('gate_quality', gate_quality, GATE_QUALITIES)):
            check_choice(key(name), value, allowed)
        if fg_mode == 'assigned_center' and gate_level != 'object':
            raise DistillConfigError(
                f"{key('gate_level')}='location' needs fg_mode='all_levels' (v1): "
                f"{key('fg_mode')}='assigned_center' gates whole objects. Fix: drop "
                f"{key('gate_level')} or set {key('fg_mode')}='all_levels'")
        for name, value in (('loss_fg_weight', loss_fg_weight),
                            ('loss_bg_feat_weight', loss_bg_feat_weight)):
            check_weight(key(name), value)
        check_weight(key('loss_bg_weight'), loss_bg_weight, optional=True)
        for name, value in (('temperature', temperature), ('gate_temperature', gate_temperature),
                            ('center_sigma', center_sigma)):
            check_number(key(name), value, low=0.0, low_inclusive=False)
        check_number(key('gate_floor'), gate_floor, low=0.0, high=1.0,
                     why='the weight a closed gate leaves')
        check_bool(key('fg_center_features'), fg_center_features)
        super().__init__(**kwargs)
        self.loss_fg_weight = loss_fg_weight
        self.loss_bg_weight = (10.0 if bg_kl == 'spatial' else 1.0) \
            if loss_bg_weight is None else loss_bg_weight
        self.loss_bg_feat_weight = loss_bg_feat_weight
        self.temperature = temperature
        self.fg_mode = fg_mode
        self.fg_center_features = fg_center_features
        self.center_sigma = center_sigma
        self.bg_kl = bg_kl
        self.kl_region = kl_region
        self.bg_gate = bg_gate
        self.gate = gate
        self.gate_temperature = gate_temperature
        self.gate_level = gate_level
        self.gate_quality = gate_quality
        self.gate_floor = gate_floor
        # plain dict, not submodules: the heads belong to the student and the teacher
        self._heads: Dict[str, torch.nn.Module] = {}

    def prepare_from_student(self, model) -> None:
        super().prepare_from_student(model)
        self._remember_head(model, 'student')

    def prepare_from_teacher(self, model) -> None:
        super().prepare_from_teacher(model)
        self._remember_head(model, 'teacher')

    def _remember_head(self, model, role: str) -> None:
        info = self.head_outputs(role)
        if info is not None:
            self._heads[role] = getattr(model, info.head_name)

    # ---- the recorded step ----------------------------------------------------------------------
    def _step(self) -> dict:
        """Aligned features, logits, GT and input size of the last recorded step.

        Returns a dict: ``student_feats`` / ``teacher_feats`` (per level (N, C_t, H, W), the
        student through its connector and resized; the teacher detached), ``student_logits`` /
        ``teacher_logits`` (per level (N, A*K, H, W), or None without a dense head),
        ``boxes`` / ``labels`` (per image), ``input_hw``.
        """
        student_feats = self.matched_feats(from_student=True)
        teacher_feats = [t.detach() for t in self.matched_feats(from_student=False)]
        student_feats = [resize_to(self.feature_connectors[level](s), t)
                         for level, (s, t) in enumerate(zip(student_feats, teacher_feats))]
        batch_inputs = self.record('batch', from_student=True, data_idx=0)
        data_samples = self.record('batch', from_student=True, data_idx=1)
        step = dict(student_feats=student_feats, teacher_feats=teacher_feats,
                    boxes=[ds.gt_instances.bboxes for ds in data_samples],
                    labels=[ds.gt_instances.labels for ds in data_samples],
                    input_hw=tuple(batch_inputs.shape[-2:]), student_logits=None,
                    teacher_logits=None)
        info = self.head_outputs('student')
        if info is not None:
            teacher_cls = [t.detach() for t in self.matched_predictions(False).cls_logits]
            step['teacher_logits'] = teacher_cls
            step['student_logits'] = [resize_to(s, t) for s, t in zip(
                self.matched_predictions(True).cls_logits, teacher_cls)]
            if info.head_name == 'rpn_head':  # objectness is one class
                step['labels'] = [torch.zeros_like(lbl) for lbl in step['labels']]
        return step

    def _stride(self, step: dict, feat: Tensor) -> Tuple[float, float]:
        input_h, input_w = step['input_hw']
        return input_h / feat.shape[-2], input_w / feat.shape[-1]

    # ---- v1 maps (also what the visualiser draws) -----------------------------------------------
    def level_maps(self, step: Optional[dict] = None) -> List[Dict[str, Tensor]]:
        """Per-level masks, gates and per-location losses of the last recorded step.

        Args:
            step: :meth:`_step` of the last recorded step, if already computed.

        Returns:
            One dict per feature level with (N, H, W) tensors at the teacher's resolution:
            ``fg_weight`` (foreground weight before the gate, 0 on background), ``fg_gate``
            (the weight the gate leaves on each foreground cell), ``fg_distance`` (``1 - cos``,
            attached to the student's graph) and, with a dense head, ``bg_gate`` and ``bg_kl``
            (attached): v1's per-cell Bernoulli KL, or v2's share of each cell in the
            background spatial KL of the class logits (summed over channels).
            The visualiser draws these.
        """
        step = step or self._step()
        if self.fg_mode == 'assigned_center':
            return self._assigned_level_maps(step)
        has_head = self.head_outputs() is not None
        boxes, labels = step['boxes'], step['labels']
        maps, labels_per_level, objects_per_level, probs_per_level = [], [], [], []
        for level, (s_feat, t_feat) in enumerate(zip(step['student_feats'],
                                                     step['teacher_feats'])):
            fg_weight, fg_label, fg_object = batch_scale_aware_foreground(
                boxes, labels, tuple(t_feat.shape[-2:]), self._stride(step, t_feat),
                return_index=True)
            labels_per_level.append(fg_label)
            objects_per_level.append(fg_object)
            level_map = dict(fg_weight=fg_weight, fg_distance=cosine_distance_map(s_feat, t_feat))
            if has_head:
                t_logits, s_logits = step['teacher_logits'][level], step['student_logits'][level]
                probs_per_level.append(self._probs(t_logits, s_logits))
                level_map['bg_kl'] = self._bernoulli_kl_map(s_logits, t_logits)
            maps.append(level_map)

        if not has_head:
            for level_map in maps:
                level_map['fg_gate'] = torch.ones_like(level_map['fg_weight'])
            return maps
        with torch.no_grad():
            fg_gates = self._v1_foreground_gates(probs_per_level, labels_per_level,
                                                 objects_per_level, sum(len(b) for b in boxes))
            for level_map, fg_gate, probs in zip(maps, fg_gates, probs_per_level):
                level_map['fg_gate'] = fg_gate
                level_map['bg_gate'] = self._background_gate(*probs)
        return maps

    # ---- v2 foreground --------------------------------------------------------------------------
    def _assigned_foreground(self, step: dict, gated_weights: bool = True) -> dict:
        """Centre-prior foreground on each object's assigned level, and the object gate.

        Returns a dict with per-level (N, H, W) ``gated_weight`` (each object's weights sum to
        its gate value over its levels), ``weight`` (the same before the gate, only when
        ``gated_weights`` is False) and ``mask`` (foreground cells), and per-object
        statistics: ``num_objects``, ``gate_open`` (objects where the teacher is better),
        ``objects_per_level`` (list of counts).
        """
        teacher_feats = step['teacher_feats']
        num_levels = len(teacher_feats)
        boxes, labels, valid = pad_objects(step['boxes'], step['labels'])
        cells = []  # per level (N, K, H, W) inside masks and centre priors
        for feat, offset in zip(teacher_feats, self._center_offsets(num_levels)):
            inside, prior = center_prior_cells(boxes, tuple(feat.shape[-2:]),
                                               self._stride(step, feat), offset,
                                               self.center_sigma)
            cells.append((inside & valid[:, :, None, None], prior * valid[:, :, None, None]))
        if self.head_outputs() is not None:
            t_quality, s_quality = self._qualities(step, boxes, labels, [c[0] for c in cells])
            levels = assigned_levels(t_quality) & valid[:, :, None]
            gate = self._gate(t_quality.amax(dim=2), s_quality.amax(dim=2)) * valid
            gate_open = float(gate.sum())
            gate = self.gate_floor + (1.0 - self.gate_floor) * gate
        else:
            levels = valid[:, :, None].expand(-1, -1, num_levels)
            gate, gate_open = valid.float(), 0.0
        object_weights = joint_object_weights([c[1] for c in cells], levels)
        result = dict(
            gated_weight=[(w * gate[:, :, None, None]).sum(dim=1) for w in object_weights],
            mask=[(w > 0).any(dim=1) for w in object_weights],
            num_objects=int(valid.sum()), gate_open=gate_open,
            objects_per_level=levels.sum(dim=(0, 1)).tolist())
        if not gated_weights:
            result['weight'] = [w.sum(dim=1) for w in object_weights]
        return result

    def _assigned_level_maps(self, step: dict) -> List[Dict[str, Tensor]]:
        """:meth:`level_maps` of ``fg_mode='assigned_center'``."""
        fg = self._assigned_foreground(step, gated_weights=False)
        maps = []
        for level, (s_feat, t_feat) in enumerate(zip(step['student_feats'],
                                                     step['teacher_feats'])):
            weight, gated = fg['weight'][level], fg['gated_weight'][level]
            level_map = dict(fg_weight=weight,
                             fg_gate=torch.where(weight > 0, gated / weight.clamp(min=1e-12),
                                                 torch.ones_like(weight)),
                             fg_distance=self._foreground_distance(s_feat, t_feat))
            if self.head_outputs() is not None:
                background = ~fg['mask'][level]
                level_map['bg_gate'] = background.float()
                level_map['bg_kl'] = channel_spatial_kl(
                    step['student_logits'][level], step['teacher_logits'][level],
                    mask=background, temperature=self.temperature, per_location=True).sum(1)
            maps.append(level_map)
        return maps

    def _cosine_inputs(self, s_feat: Tensor, t_feat: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, C, H, W) features as the cosine sees them: centred per channel (over images and
        cells) with ``fg_center_features``, as they are otherwise."""
        if not self.fg_center_features:
            return s_feat, t_feat
        return (s_feat - s_feat.mean(dim=(0, 2, 3), keepdim=True),
                t_feat - t_feat.mean(dim=(0, 2, 3), keepdim=True))

    def _foreground_distance(self, s_feat: Tensor, t_feat: Tensor) -> Tensor:
        """(N, H, W) ``1 - cos`` on the whole map (for the pictures)."""
        return cosine_distance_map(*self._cosine_inputs(s_feat, t_feat))

    def _weighted_foreground_distance(self, s_feat: Tensor, t_feat: Tensor, weight: Tensor,
                                      mask: Tensor) -> Tensor:
        """``sum(weight * (1 - cos))`` over the (N, H, W) ``mask`` cells only (few, so the
        cosine is not computed on the whole map); attached, 0 without foreground."""
        s_feat, t_feat = self._cosine_inputs(s_feat, t_feat)
        s_vecs = s_feat.permute(0, 2, 3, 1)[mask]  # (M, C)
        t_vecs = t_feat.permute(0, 2, 3, 1)[mask]
        cos = torch.nn.functional.cosine_similarity(s_vecs.float(), t_vecs.float(), dim=1,
                                                    eps=1e-8)
        return ((1.0 - cos) * weight[mask]).sum() + 0.0 * s_feat.sum()

    def _center_offsets(self, num_levels: int) -> List[float]:
        """Where the student head's priors sit in each cell (anchor generators: 0, points: 0.5)."""
        head = self._heads.get('student')
        generator = getattr(head, 'prior_generator', None)
        offset = getattr(generator, 'center_offset', getattr(generator, 'offset', 0.5))
        return [float(offset)] * num_levels

    def _qualities(self, step: dict, boxes: Tensor, labels: Tensor,
                   insides: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """(N, K, L) teacher and student qualities of every object on every level.

        Args:
            boxes, labels: padded objects, (N, K, 4) and (N, K).
            insides: per level (N, K, H, W) object cells.
        """
        with torch.no_grad():
            decoded = self._decoded_boxes() if self.gate_quality == 'score_iou' else None
            per_role = ([], [])
            for level, inside in enumerate(insides):
                probs = self._probs(step['teacher_logits'][level],
                                    step['student_logits'][level])
                for role in (0, 1):  # teacher, student
                    pred = None if decoded is None else decoded[role][level]
                    per_role[role].append(object_quality(probs[role], labels, inside, boxes,
                                                         pred))
            return torch.stack(per_role[0], dim=2), torch.stack(per_role[1], dim=2)

    def _decoded_boxes(self) -> Optional[Tuple[List[Tensor], List[Tensor]]]:
        """Per role (teacher, student) per level (N, A, 4, H, W) boxes, or None if undecodable."""
        heads = [self._heads.get('teacher'), self._heads.get('student')]
        infos = [self.head_outputs('teacher'), self.head_outputs('student')]
        if any(h is None or i is None or i.box_encoding is None for h, i in zip(heads, infos)):
            return None
        teacher_boxes = decode_dense_boxes(heads[0], [
            b.detach() for b in self.matched_predictions(False).bbox_preds],
            self.matched_levels(from_student=False))
        student_boxes = decode_dense_boxes(heads[1], [
            b.detach() for b in self.matched_predictions(True).bbox_preds],
            self.matched_levels(from_student=True))
        if any(s.shape != t.shape for s, t in zip(student_boxes, teacher_boxes)):
            return None  # different grids or anchors: fall back to the score
        return teacher_boxes, student_boxes

    # ---- losses ---------------------------------------------------------------------------------
    def compute_distill_losses(self) -> Dict[str, Tensor]:
        """Distillation losses and statistics of the last recorded step.

        Returns:
            Weighted losses summed into the total loss: ``loss_fg_cos``, ``loss_bg_feat``
            (unless its weight is 0), ``loss_bg_kl`` (with a dense head). Logged only (no
            ``loss`` in the name): ``fg_gate_ratio`` (objects, or v1 cells, where the teacher
            is better), ``bg_gate_ratio`` (v1 background gate), ``fg_teacher_mean_dir_cos``
            (how well each level's mean teacher vector alone explains the direction of the
            foreground vectors: near 1 means an uncentred cosine is mostly free), and per
            matched level ``l{i}_fg_cos``, ``l{i}_bg_feat``, ``l{i}_bg_kl`` (unweighted) and
            ``l{i}_objects`` (share of the objects assigned there); ``i`` counts the levels
            both necks have, finest first.
        """
        step = self._step()
        maps = None
        if self.fg_mode == 'all_levels':
            maps = self.level_maps(step)
            losses, fg_masks = self._v1_foreground_losses(maps)
        else:
            losses, fg_masks = self._foreground_losses(step)
        bg_masks = [~mask for mask in fg_masks]
        if self.loss_bg_feat_weight > 0:
            terms = [channel_spatial_kl(s, t, mask=region, temperature=self.temperature).mean()
                     for s, t, region in zip(step['student_feats'], step['teacher_feats'],
                                             self._kl_masks(bg_masks))]
            losses['loss_bg_feat'] = self.loss_bg_feat_weight * torch.stack(terms).sum()
            losses.update({f'l{i}_bg_feat': t.detach() for i, t in enumerate(terms)})
        if self.head_outputs() is not None:
            losses.update(self._background_prediction_losses(step, maps, bg_masks))
        return losses

    def _kl_masks(self, bg_masks: List[Tensor]) -> List[Optional[Tensor]]:
        """Per level the (N, H, W) cells the spatial KLs cover; None is the whole map."""
        if self.kl_region == 'whole_map':
            return [None] * len(bg_masks)
        return bg_masks

    def _foreground_losses(self, step: dict) -> Tuple[Dict[str, Tensor], List[Tensor]]:
        fg = self._assigned_foreground(step)
        terms = [self._weighted_foreground_distance(s_feat, t_feat, weight, mask)
                 for s_feat, t_feat, weight, mask in zip(
                     step['student_feats'], step['teacher_feats'], fg['gated_weight'],
                     fg['mask'])]
        num_objects = max(fg['num_objects'], 1)
        device = terms[0].device
        losses = dict(loss_fg_cos=self.loss_fg_weight * torch.stack(terms).sum() / num_objects)
        losses['fg_gate_ratio'] = torch.tensor(fg['gate_open'] / num_objects, device=device)
        losses['fg_teacher_mean_dir_cos'] = _mean_direction_cosine(step['teacher_feats'],
                                                                   fg['mask'])
        for i, (term, count) in enumerate(zip(terms, fg['objects_per_level'])):
            losses[f'l{i}_fg_cos'] = term.detach() / num_objects
            losses[f'l{i}_objects'] = torch.tensor(count / num_objects, device=device)
        return losses, fg['mask']

    def _v1_foreground_losses(self, maps) -> Tuple[Dict[str, Tensor], List[Tensor]]:
        """v1: per level the gated scale-aware mean of ``1 - cos``, levels averaged."""
        terms, fg_open, fg_total = [], 0.0, 0.0
        for level_map in maps:
            fg_weight, fg_gate = level_map['fg_weight'], level_map['fg_gate']
            fg_mask = fg_weight > 0
            terms.append((level_map['fg_distance'] * fg_weight * fg_gate).sum() /
                         fg_weight.sum().clamp(min=1e-12))
            fg_open += float((fg_mask * fg_gate).sum())
            fg_total += float(fg_mask.sum())
        device = terms[0].device
        losses = dict(loss_fg_cos=self.loss_fg_weight * torch.stack(terms).mean())
        losses['fg_gate_ratio'] = torch.tensor(fg_open / max(fg_total, 1.0), device=device)
        return losses, [level_map['fg_weight'] > 0 for level_map in maps]

    def _background_prediction_losses(self, step: dict, maps, bg_masks) -> Dict[str, Tensor]:
        """``loss_bg_kl`` on the background cells, and its per-level values / gate ratio."""
        if self.bg_kl == 'spatial':
            terms = [channel_spatial_kl(s, t, mask=region, temperature=self.temperature).mean()
                     for s, t, region in zip(step['student_logits'], step['teacher_logits'],
                                             self._kl_masks(bg_masks))]
            losses = dict(loss_bg_kl=self.loss_bg_weight * torch.stack(terms).sum())
            losses.update({f'l{i}_bg_kl': t.detach() for i, t in enumerate(terms)})
            return losses
        # v1: mean Bernoulli/softmax KL over anchors, gated, per-level background mean, averaged
        terms, bg_open, bg_total = [], 0.0, 0.0
        for level, bg_mask in enumerate(bg_masks):
            s_logits, t_logits = step['student_logits'][level], step['teacher_logits'][level]
            kl = maps[level]['bg_kl'] if maps else self._bernoulli_kl_map(s_logits, t_logits)
            if self.bg_gate == 'teacher_better':
                gate = maps[level]['bg_gate'] if maps else self._background_gate(
                    *self._probs(t_logits, s_logits))
            else:
                gate = torch.ones_like(kl)
            bg_weight = bg_mask * gate
            terms.append((kl * bg_weight).sum() / bg_mask.sum().clamp(min=1))
            bg_open += float(bg_weight.sum())
            bg_total += float(bg_mask.sum())
        device = terms[0].device
        return dict(loss_bg_kl=self.loss_bg_weight * torch.stack(terms).mean(),
                    bg_gate_ratio=torch.tensor(bg_open / max(bg_total, 1.0), device=device))

    # ---- shared pieces --------------------------------------------------------------------------
    def _probs(self, t_logits: Tensor, s_logits: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, A, K, H, W) teacher and student probabilities, without gradients."""
        info = self.head_outputs('student')
        cls_out_channels, use_sigmoid = info.cls_out_channels, info.use_sigmoid
        with torch.no_grad():
            return (dense_class_probs(t_logits, cls_out_channels, use_sigmoid),
                    dense_class_probs(s_logits.detach(), cls_out_channels, use_sigmoid))

    def _bernoulli_kl_map(self, s_logits: Tensor, t_logits: Tensor) -> Tensor:
        """(N, H, W) v1 per-cell KL, the mean over the cell's anchors."""
        info = self.head_outputs('student')
        cls_out_channels, use_sigmoid = info.cls_out_channels, info.use_sigmoid
        n, channels, h, w = s_logits.shape
        per_anchor = (n, channels // cls_out_channels, cls_out_channels, h, w)
        return prediction_kl(
            s_logits.view(per_anchor).permute(0, 1, 3, 4, 2),
            t_logits.view(per_anchor).permute(0, 1, 3, 4, 2), use_sigmoid,
            self.temperature).mean(dim=1)

    def _background_gate(self, t_probs: Tensor, s_probs: Tensor) -> Tensor:
        use_sigmoid = self.head_outputs('student').use_sigmoid
        return self._gate(background_score(t_probs, use_sigmoid),
                          background_score(s_probs, use_sigmoid))

    def _gate(self, teacher_score: Tensor, student_score: Tensor) -> Tensor:
        """Teacher-better gate of the configured mode on matching score tensors."""
        if self.gate == 'off':
            return torch.ones_like(teacher_score)
        return teacher_better_gate(teacher_score, student_score, self.gate == 'soft',
                                   self.gate_temperature)

    def _v1_foreground_gates(self, probs_per_level: List[Tuple[Tensor, Tensor]],
                             labels_per_level: List[Tensor], objects_per_level: List[Tensor],
                             num_objects: int) -> List[Tensor]:
        """(N, H, W) v1 foreground gate per level from (N, A, K, H, W) probabilities.

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


def _mean_direction_cosine(teacher_feats: List[Tensor], masks: List[Tensor]) -> Tensor:
    """Mean cosine between foreground teacher vectors and their level's mean teacher vector.

    Args:
        teacher_feats: per level (N, C, H, W).
        masks: per level (N, H, W) bool foreground cells.

    Returns:
        0-dim tensor, the mean over all foreground cells of all levels (0 without any).
    """
    with torch.no_grad():
        values = []
        for feat, mask in zip(teacher_feats, masks):
            if mask.any():
                mean = feat.float().mean(dim=(0, 2, 3))
                vectors = feat.float().permute(0, 2, 3, 1)[mask]  # (M, C)
                values.append(torch.nn.functional.cosine_similarity(
                    vectors, mean[None].expand_as(vectors), dim=1, eps=1e-8))
        if not values:
            return teacher_feats[0].new_zeros(())
        return torch.cat(values).mean()
