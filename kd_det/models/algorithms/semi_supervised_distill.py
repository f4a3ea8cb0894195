"""Distillation on batches that mix labeled and unlabeled images."""
import inspect
from typing import Dict, List, Optional

import torch
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData
from mmrazor.registry import MODELS

from kd_det.datasets.semi_supervised import is_labeled
from kd_det.models.utils.arg_checks import (DistillConfigError, algorithm_key, check_number,
                                            check_weight)
from kd_det.models.utils.unlabeled_balance import image_loss_weights, sigmoid_rampup
from .detection_distill import DetectionDistill


@MODELS.register_module()
class SemiSupervisedDetectionDistill(DetectionDistill):
    """``DetectionDistill`` for batches with labeled and unlabeled images.

    Images whose ``data_samples`` metainfo has ``labeled=False`` (set by
    ``PartiallyLabeledCocoDataset(subset='unlabeled')``) have no annotations. The distiller
    sees the whole batch (teacher and student run on every image, so its recorders hold all of
    them); the student's task loss is computed on the labeled images only: the student runs
    once on the whole batch and its dense head's ``loss_by_feat`` gets the labeled rows of the
    head outputs. An unlabeled image therefore teaches through the distillation losses alone,
    instead of being trained as an image without objects.

    With ``pseudo_label_thr`` set, this is the plain hard pseudo-label baseline instead: the
    teacher's detections (its own test-time post-processing, NMS included) with score
    ``>= pseudo_label_thr`` become the GT of the unlabeled images, which then count as labeled.

    The teacher stays in eval mode throughout: a frozen teacher predicts as at test time
    (FCOS, for one, only scales its box distances to pixels in eval mode).

    **Labeled/unlabeled balance.** Each unlabeled image's share of every distillation term is
    multiplied by ``unlabeled_weight * sigmoid_rampup(iter, unlabeled_rampup_iters)``; a
    labeled image's by 1 (:mod:`kd_det.models.utils.unlabeled_balance`). The defaults (1, no
    ramp) count both alike, so the batch mix (``source_ratio``) alone sets the balance. Within
    that share the distiller's own sample weights still apply (ConfidenceSoftLabel's
    hard-sample weights: teacher reliability x student discrepancy). The factor in use is
    logged as ``unlabeled_weight``.

    A batch that is entirely labeled runs exactly as :class:`DetectionDistill`. Mixed batches
    need a one-stage student (RetinaNet, FCOS, ATSS, GFL, ...).

    Args:
        pseudo_label_thr (float, optional): score threshold of hard pseudo-labels, or None
            (unlabeled images get distillation losses only). Defaults to None.
        unlabeled_weight (float): factor of the unlabeled images' distillation losses, >= 0.
            Defaults to 1.0.
        unlabeled_rampup_iters (int): iterations of the sigmoid ramp of ``unlabeled_weight``
            from ~0 (0: no ramp). Defaults to 0.
        Others: as :class:`DetectionDistill`.
    """

    def __init__(self, *args, pseudo_label_thr: Optional[float] = None,
                 unlabeled_weight: float = 1.0, unlabeled_rampup_iters: int = 0, **kwargs):
        check_number(algorithm_key('pseudo_label_thr'), pseudo_label_thr, low=0.0, high=1.0,
                     optional=True, why="a score threshold of the teacher's detections")
        check_weight(algorithm_key('unlabeled_weight'), unlabeled_weight)
        check_number(algorithm_key('unlabeled_rampup_iters'), unlabeled_rampup_iters, low=0,
                     integer=True, why='0 switches the ramp off')
        super().__init__(*args, **kwargs)
        if pseudo_label_thr is not None and self.teacher_head is None:
            raise DistillConfigError(
                f"{algorithm_key('pseudo_label_thr')}={pseudo_label_thr} needs the teacher's "
                f"dense head, but the teacher runs without one. Fix: set "
                f"{algorithm_key('teacher_head')}='auto' (or the head's name), not None, or "
                f"drop {algorithm_key('pseudo_label_thr')}")
        self.pseudo_label_thr = pseudo_label_thr
        self.unlabeled_weight = unlabeled_weight
        self.unlabeled_rampup_iters = unlabeled_rampup_iters
        if self.balances_unlabeled:
            self._check_balance_is_possible()

    @property
    def balances_unlabeled(self) -> bool:
        """Whether unlabeled images' distillation losses get a factor other than 1."""
        return self.unlabeled_weight != 1.0 or self.unlabeled_rampup_iters > 0

    def _check_balance_is_possible(self) -> None:
        keys = f"{algorithm_key('unlabeled_weight')} / {algorithm_key('unlabeled_rampup_iters')}"
        if self.pseudo_label_thr is not None:
            raise DistillConfigError(
                f'{keys} weight the distillation losses of unlabeled images, but with '
                f"{algorithm_key('pseudo_label_thr')} every image is labeled (pseudo GT) and "
                'learns through the task loss. Fix: drop one of them')
        accepts = inspect.signature(self.distiller.compute_distill_losses).parameters
        if 'image_weights' not in accepts:
            raise DistillConfigError(
                f'{keys} need per-image distillation losses, which '
                f'{type(self.distiller).__name__} does not compute. Fix: use '
                "model.distiller.type='ConfidenceSoftLabelDistiller', or keep "
                f"{algorithm_key('unlabeled_weight')}=1.0 and "
                f"{algorithm_key('unlabeled_rampup_iters')}=0")

    def current_unlabeled_weight(self) -> float:
        """``unlabeled_weight`` ramped by the runner's current iteration (MessageHub
        ``'iter'``, which a resumed run restores; iteration 0 outside a runner)."""
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        return self.unlabeled_weight * sigmoid_rampup(iteration, self.unlabeled_rampup_iters)

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.teacher.eval()

    def prepare_batch(self, batch_inputs: torch.Tensor, data_samples: list,
                      teacher_outs) -> Dict[str, torch.Tensor]:
        """Pseudo GT for the unlabeled images (with ``pseudo_label_thr``); logs how many
        images count as labeled."""
        labeled = [is_labeled(sample) for sample in data_samples]
        values = {}
        if self.pseudo_label_thr is not None and not all(labeled):
            values['pseudo_boxes_per_image'] = self._pseudo_label(teacher_outs, data_samples,
                                                                  labeled)
            labeled = [True] * len(data_samples)
        values['labeled_images'] = torch.tensor(float(sum(labeled)), device=batch_inputs.device)
        return values

    def distill_losses(self, data_samples: list) -> Dict[str, torch.Tensor]:
        """The distiller's losses, unlabeled images weighted by the current
        ``unlabeled_weight`` (logged with them)."""
        if not self.balances_unlabeled:
            return super().distill_losses(data_samples)
        factor = self.current_unlabeled_weight()
        device = next(self.student.parameters()).device
        weights = image_loss_weights([is_labeled(s) for s in data_samples], factor, device)
        losses = self.distiller.compute_distill_losses(image_weights=weights)
        losses['unlabeled_weight'] = torch.tensor(factor, device=device)
        return losses

    def student_task_loss(self, batch_inputs: torch.Tensor,
                          data_samples: list) -> Dict[str, torch.Tensor]:
        """The student's detection loss on the labeled images (every image has GT with
        pseudo-labels); one student forward in all."""
        labeled = [is_labeled(sample) for sample in data_samples]
        if self.pseudo_label_thr is not None or all(labeled):
            return super().student_task_loss(batch_inputs, data_samples)
        from mmdet.models.detectors import SingleStageDetector
        from mmdet.models.utils import unpack_gt_instances
        if not isinstance(self.student, SingleStageDetector):
            raise TypeError(
                f'batches with unlabeled images need a one-stage student (RetinaNet, FCOS, '
                f'ATSS, GFL, ...); {type(self.student).__name__} computes its task loss in '
                'stages that cannot leave images out. Train it on labeled images only, or use '
                'pseudo_label_thr so that every image has GT')
        # Backbone, neck and head are called as modules, so their recorders fire; the head's
        # loss then gets only the labeled rows. (mmdet's mode='tensor' calls head.forward()
        # directly, which would bypass the head's recorder.)
        outs = self.student.bbox_head(self.student.extract_feat(batch_inputs))
        self._record_student_inputs(batch_inputs, data_samples)
        rows = [i for i, flag in enumerate(labeled) if flag]
        if not rows:
            zero = sum(level.sum() for out in outs for level in out) * 0.0
            return dict(loss_task_no_labeled=zero)
        index = torch.tensor(rows, device=batch_inputs.device)
        labeled_outs = [[None if level is None else level[index] for level in out]
                        for out in outs]
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(
            [data_samples[i] for i in rows])
        return self.student.bbox_head.loss_by_feat(*labeled_outs, gt_instances, img_metas,
                                                   gt_ignore)

    def _record_student_inputs(self, batch_inputs: torch.Tensor, data_samples: list) -> None:
        """Record the student's inputs as its forward hook would have: the distiller's
        recorders on the detector itself (e.g. the GT ``batch`` record of
        :class:`DenseDetectionDistiller`) fire only when the whole detector is called."""
        from mmrazor.models.task_modules import ModuleInputsRecorder
        for recorder in self.distiller.student_recorders.recorders.values():
            if isinstance(recorder, ModuleInputsRecorder) and recorder.source == '':
                recorder.forward_hook(self.student, (batch_inputs, data_samples), None)

    @torch.no_grad()
    def _pseudo_label(self, teacher_outs, data_samples: list,
                      labeled: List[bool]) -> torch.Tensor:
        """Give each unlabeled sample the teacher's confident detections as GT.

        Returns:
            The mean number of pseudo boxes per unlabeled image (0-dim tensor, for the log).
        """
        rows = [i for i, flag in enumerate(labeled) if not flag]
        index = torch.tensor(rows, device=teacher_outs[0][0].device)
        outs = [[None if level is None else level[index] for level in out]
                for out in teacher_outs]
        head = getattr(self.teacher, self.teacher_head)
        predictions = head.predict_by_feat(
            *outs, batch_img_metas=[data_samples[i].metainfo for i in rows], rescale=False)
        count = 0
        for row, pred in zip(rows, predictions):
            keep = pred.scores >= self.pseudo_label_thr
            data_samples[row].gt_instances = InstanceData(bboxes=pred.bboxes[keep],
                                                          labels=pred.labels[keep])
            count += int(keep.sum())
        return torch.tensor(count / len(rows), device=index.device)
