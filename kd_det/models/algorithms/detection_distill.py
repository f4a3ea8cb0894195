"""Single-teacher distillation for detectors with a cheap teacher pass and a strict teacher load."""
from typing import Dict, List, Optional

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS

from kd_det.models.utils.arg_checks import (algorithm_key, check_bool, check_name,
                                            check_path, check_submodule)
from kd_det.models.utils.detector_probe import find_dense_head
from kd_det.models.utils.model_config import resolve_model_cfg
from kd_det.utils.checkpoint import load_teacher_checkpoint

# SingleTeacherDistill's on/off arguments, passed through **kwargs
MMRAZOR_SWITCHES = ('teacher_trainable', 'teacher_norm_eval', 'student_trainable',
                    'calculate_student_loss', 'teacher_module_inplace')


@MODELS.register_module()
class DetectionDistill(SingleTeacherDistill):
    """``SingleTeacherDistill`` whose teacher runs only backbone, neck and dense-head forward.

    mmrazor's ``SingleTeacherDistill`` runs the frozen teacher in ``mode='loss'`` (label
    assignment and loss computation it then discards); ``FpnTeacherDistill`` skips the teacher
    head, which prediction-level distillers need. Here the teacher runs ``extract_feat`` and its
    dense head (``bbox_head``, or ``rpn_head`` of two-stage detectors) under ``no_grad``, which
    fires every recorder a kd_det or mmrazor distiller puts on the neck or the head.

    ``architecture`` and ``teacher`` may be model dicts (e.g. ``_base_.model``) or
    ``dict(cfg_path=...)`` with ``mmdet::``, ``kd_det::`` or a local config path.

    ``teacher_ckpt`` is loaded strictly through kd_det's safe loader: a checkpoint that does not
    fit the teacher config fails before training with the missing/unexpected keys named.

    Arguments are checked before anything is built (:mod:`kd_det.models.utils.arg_checks`),
    mmrazor's switches included: ``teacher_trainable='False'`` (a truthy string) fails with the
    key named instead of training the teacher.

    Args:
        teacher_head (str): the teacher's dense head to run, ``'auto'`` to find it, or ``None``
            to run backbone + neck only. Defaults to ``'auto'``.
        Others: as :class:`mmrazor.models.SingleTeacherDistill`.
    """

    def __init__(self, architecture, teacher, teacher_ckpt: Optional[str] = None,
                 teacher_head: Optional[str] = 'auto', **kwargs):
        check_path(algorithm_key('teacher_ckpt'), teacher_ckpt, optional=True)
        check_name(algorithm_key('teacher_head'), teacher_head, optional=True,
                   what="'auto' or a module name")
        for name in MMRAZOR_SWITCHES:
            if name in kwargs:
                check_bool(algorithm_key(name), kwargs[name])
        super().__init__(architecture=resolve_model_cfg(architecture),
                         teacher=resolve_model_cfg(teacher), teacher_ckpt=None, **kwargs)
        if teacher_head not in (None, 'auto'):
            check_submodule(algorithm_key('teacher_head'), self.teacher, teacher_head,
                            'teacher', other_values="'auto', None")
        self.teacher_head = None if teacher_head is None else find_dense_head(
            self.teacher, teacher_head)
        self.teacher_ckpt = teacher_ckpt
        if teacher_ckpt:
            # init first so init_weights() called later by the runner is a no-op for the teacher
            self.teacher.init_weights()
            load_teacher_checkpoint(self.teacher, teacher_ckpt)

    def teacher_forward(self, batch_inputs: torch.Tensor):
        """Run the teacher's backbone, neck and dense head; recorders capture the outputs.

        Returns:
            The dense head's outputs (tuple of per-level lists), or None without a head.
        """
        feats = self.teacher.extract_feat(batch_inputs)
        if self.teacher_head is None:
            return None
        return getattr(self.teacher, self.teacher_head)(feats)

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, torch.Tensor]:
        losses = dict()
        self.distiller.set_deliveries_override(False)
        with self.distiller.teacher_recorders, self.distiller.deliveries:
            with torch.set_grad_enabled(self.teacher_trainable):
                teacher_outs = self.teacher_forward(batch_inputs)
        losses.update(self.prepare_batch(batch_inputs, data_samples, teacher_outs))

        self.distiller.set_deliveries_override(True)
        with self.distiller.student_recorders, self.distiller.deliveries:
            student_losses = self.student_task_loss(batch_inputs, data_samples)
        if self.calculate_student_loss:
            losses.update(add_prefix(student_losses, 'student'))

        losses.update(add_prefix(self.distill_losses(data_samples), 'distill'))
        return losses

    def distill_losses(self, data_samples: list) -> Dict[str, torch.Tensor]:
        """The distiller's losses of the step whose records it holds."""
        return self.distiller.compute_distill_losses()

    def prepare_batch(self, batch_inputs: torch.Tensor, data_samples: list,
                      teacher_outs) -> Dict[str, torch.Tensor]:
        """Between the teacher and the student pass: may edit ``data_samples`` (e.g. give
        unlabeled images pseudo GT); returns values to log (none here)."""
        return {}

    def student_task_loss(self, batch_inputs: torch.Tensor,
                          data_samples: list) -> Dict[str, torch.Tensor]:
        """The student's own detection loss (its recorders fire during this call)."""
        return self.student(batch_inputs, data_samples, mode='loss')
