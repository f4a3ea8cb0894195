"""Shared wiring of kd_det's detection distillers: recorders, connectors and head checks."""
from typing import Dict, List, Optional

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.task_modules import RecorderManager
from torch import nn

from kd_det.models.utils.align import build_channel_connectors
from kd_det.models.utils.arg_checks import check_name, check_submodule, distiller_key
from kd_det.models.utils.detector_probe import find_dense_head, probe_feature_channels


class DenseDetectionDistiller(ConfigurableDistiller):
    """Base for distillers that read FPN features, dense-head outputs and the GT batch.

    When the algorithm prepares it with the student and the teacher, it puts recorders on
    ``neck_source`` (feature levels) and on the dense head (``bbox_head``/``rpn_head``, or
    ``head_source``) of both, and on the student detector's own inputs: the student is called as
    ``student(batch_inputs, data_samples, mode='loss')``, so ``data_samples`` (GT boxes, or
    nothing for unlabeled images) reach the distiller without any user wiring. That recorder is
    the one mechanism by which kd_det distillers get GT. Feature widths are probed with a dummy
    forward and a 1x1 connector per level maps student to teacher width where they differ.

    Arguments are checked when the distiller is built
    (:mod:`kd_det.models.utils.arg_checks`); ``neck_source`` and ``head_source`` are looked up
    in both models when they are prepared.

    Subclasses implement ``compute_distill_losses`` using :meth:`record`, ``self.head_spec``
    (``(cls_out_channels, use_sigmoid, head_name)`` or None) and ``self.feature_connectors``.

    Args:
        neck_source (str): module whose outputs are the feature levels. Defaults to ``'neck'``.
        head_source (str): dense head to read predictions from; ``'auto'`` finds ``bbox_head``
            (one-stage) or ``rpn_head`` (two-stage).
    """

    def __init__(self, neck_source: str = 'neck', head_source: str = 'auto', **kwargs):
        check_name(distiller_key('neck_source'), neck_source, what='a module name')
        check_name(distiller_key('head_source'), head_source, what="'auto' or a module name")
        super().__init__(**kwargs)
        self.neck_source = neck_source
        self.head_source = head_source
        self.feature_connectors: Optional[nn.ModuleList] = None
        self._channels: Dict[str, List[int]] = {}
        self._head_specs: Dict[str, Optional[tuple]] = {}

    @property
    def head_spec(self) -> Optional[tuple]:
        """``(cls_out_channels, use_sigmoid, head_name)`` of the student's dense head."""
        return self._head_specs.get('student')

    def _prepare(self, model: nn.Module, role: str) -> RecorderManager:
        check_submodule(distiller_key('neck_source'), model, self.neck_source, role)
        if self.head_source != 'auto':
            check_submodule(distiller_key('head_source'), model, self.head_source, role,
                            other_values="'auto'")
        head_name = find_dense_head(model, self.head_source)
        recorders = dict(feats=dict(type='ModuleOutputs', source=self.neck_source))
        if head_name is not None:
            recorders['head'] = dict(type='ModuleOutputs', source=head_name)
            head = getattr(model, head_name)
            self._head_specs[role] = (head.cls_out_channels, bool(head.use_sigmoid_cls),
                                      head_name)
        else:
            self._head_specs[role] = None
        if role == 'student':
            recorders['batch'] = dict(type='ModuleInputs', source='')
        manager = RecorderManager(recorders)
        manager.initialize(model)
        self._channels[role] = probe_feature_channels(model)
        if len(self._channels) == 2:
            self._check_heads()
            self.feature_connectors = build_channel_connectors(self._channels['student'],
                                                               self._channels['teacher'])
        return manager

    def _check_heads(self) -> None:
        student, teacher = self._head_specs.get('student'), self._head_specs.get('teacher')
        if (student is None) != (teacher is None):
            raise ValueError('only one of student and teacher has a dense head; set head_source '
                             'to a head both have')
        if student is not None and student[:2] != teacher[:2]:
            raise ValueError(
                f'student head predicts {student[0]} classes per anchor '
                f'(sigmoid={student[1]}), the teacher {teacher[0]} (sigmoid={teacher[1]}): '
                'teacher and student must be trained on the same classes with the same kind '
                'of classifier')

    def prepare_from_student(self, model: nn.Module) -> None:
        self.student_recorders = self._prepare(model, 'student')

    def prepare_from_teacher(self, model: nn.Module) -> None:
        self.teacher_recorders = self._prepare(model, 'teacher')

    def record(self, name: str, from_student: bool, data_idx: Optional[int] = None):
        """The last step's record ``name`` (``feats``, ``head`` or, for the student, ``batch``)."""
        manager = self.student_recorders if from_student else self.teacher_recorders
        role = 'student' if from_student else 'teacher'
        try:
            return manager.get_recorder(name).get_record_data(0, data_idx)
        except (IndexError, KeyError) as err:
            raise RuntimeError(
                f'{type(self).__name__} found no {role} {name!r} record for this step. It '
                "needs the teacher's head outputs: use architecture type='DetectionDistill' or "
                "'SingleTeacherDistill' (FpnTeacherDistill never runs the teacher head)") from err
