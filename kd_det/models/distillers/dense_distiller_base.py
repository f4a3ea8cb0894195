"""Shared wiring of kd_det's detection distillers: recorders, connectors and head checks."""
from typing import Dict, List, Optional, Tuple

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.task_modules import RecorderManager
from torch import Tensor, nn

from kd_det.models.utils.align import build_channel_connectors
from kd_det.models.utils.arg_checks import check_name, check_submodule, distiller_key
from kd_det.models.utils.detector_probe import find_dense_head, probe_detector
from kd_det.models.utils.head_outputs import (DensePredictions, HeadOutputs, dense_predictions,
                                              describe_dense_head, match_levels_by_stride,
                                              max_over_priors)


class DenseDetectionDistiller(ConfigurableDistiller):
    """Base for distillers that read FPN features, dense-head outputs and the GT batch.

    When the algorithm prepares it with the student and the teacher, it puts recorders on
    ``neck_source`` (feature levels) and on the dense head (``bbox_head``/``rpn_head``, or
    ``head_source``) of both, and on the student detector's own inputs: the student is called as
    ``student(batch_inputs, data_samples, mode='loss')``, so ``data_samples`` (GT boxes, or
    nothing for unlabeled images) reach the distiller without any user wiring. That recorder is
    the one mechanism by which kd_det distillers get GT. A dummy forward probes the feature
    widths and strides and what each dense head outputs
    (:func:`~kd_det.models.utils.head_outputs.describe_dense_head`).

    **Levels are matched by stride**: student level ``i`` is compared with the teacher level of
    the same stride, and only the strides both necks have are distilled (an RTMDet student, 8/16/
    32, with a RetinaNet teacher, 8..128, is distilled on 8/16/32). ``level_pairs`` holds the
    ``(student level, teacher level)`` pairs, and :meth:`matched_feats` /
    :meth:`matched_predictions` return the records on them. A 1x1 connector per matched level
    maps student to teacher width where they differ.

    When the heads put a different number of priors on a location (RetinaNet's 9 anchors, RTMDet's
    1 point), class and quality maps are compared per location: the highest logit over the
    priors of each class (sigmoid heads only).

    Arguments are checked when the distiller is built
    (:mod:`kd_det.models.utils.arg_checks`); ``neck_source`` and ``head_source`` are looked up
    in both models when they are prepared.

    Subclasses implement ``compute_distill_losses`` using :meth:`matched_feats`,
    :meth:`matched_predictions`, :meth:`record` (GT batch), :meth:`head_outputs` and
    ``self.feature_connectors``.

    Args:
        neck_source (str): module whose outputs are the feature levels. Defaults to ``'neck'``.
        head_source (str): dense head to read predictions from; ``'auto'`` finds ``bbox_head``
            (one-stage) or ``rpn_head`` (two-stage); ``'none'`` reads none (feature terms only,
            e.g. a two-stage teacher's FPN for a one-stage student).
    """

    def __init__(self, neck_source: str = 'neck', head_source: str = 'auto', **kwargs):
        check_name(distiller_key('neck_source'), neck_source, what='a module name')
        check_name(distiller_key('head_source'), head_source,
                   what="'auto', 'none' or a module name")
        super().__init__(**kwargs)
        self.neck_source = neck_source
        self.head_source = head_source
        self.feature_connectors: Optional[nn.ModuleList] = None
        self._channels: Dict[str, List[int]] = {}
        self._strides: Dict[str, List[float]] = {}
        self._head_specs: Dict[str, Optional[HeadOutputs]] = {}
        self.level_pairs: List[Tuple[int, int]] = []

    def head_outputs(self, role: str = 'student') -> Optional[HeadOutputs]:
        """What the ``role`` (``'student'`` or ``'teacher'``) dense head outputs, or None."""
        return self._head_specs.get(role)

    @property
    def head_spec(self) -> Optional[tuple]:
        """``(cls_out_channels, use_sigmoid, head_name)`` of the student's dense head, or None."""
        info = self.head_outputs('student')
        return None if info is None else info.summary

    @property
    def per_location(self) -> bool:
        """The heads put a different number of priors on a location: class and quality maps
        are compared per location (max over priors)."""
        student, teacher = self.head_outputs('student'), self.head_outputs('teacher')
        return student is not None and teacher is not None and \
            student.num_priors != teacher.num_priors

    def _prepare(self, model: nn.Module, role: str) -> RecorderManager:
        check_submodule(distiller_key('neck_source'), model, self.neck_source, role)
        if self.head_source not in ('auto', 'none'):
            check_submodule(distiller_key('head_source'), model, self.head_source, role,
                            other_values="'auto' or 'none'")
        head_name = find_dense_head(model, self.head_source)
        recorders = dict(feats=dict(type='ModuleOutputs', source=self.neck_source))
        if head_name is not None:
            recorders['head'] = dict(type='ModuleOutputs', source=head_name)
        if role == 'student':
            recorders['batch'] = dict(type='ModuleInputs', source='')
        manager = RecorderManager(recorders)
        manager.initialize(model)
        probe = probe_detector(model, head_name)
        self._channels[role], self._strides[role] = probe.channels, probe.strides
        self._head_specs[role] = None if head_name is None else describe_dense_head(
            getattr(model, head_name), head_name, probe.head_outputs, probe.strides)
        if len(self._channels) == 2:
            self._check_heads()
            self.level_pairs = match_levels_by_stride(self._strides['student'],
                                                      self._strides['teacher'])
            self.feature_connectors = build_channel_connectors(
                [self._channels['student'][s] for s, _ in self.level_pairs],
                [self._channels['teacher'][t] for _, t in self.level_pairs])
        return manager

    def _check_heads(self) -> None:
        student, teacher = self._head_specs.get('student'), self._head_specs.get('teacher')
        if (student is None) != (teacher is None):
            raise ValueError('only one of student and teacher has a dense head; set head_source '
                             'to a head both have')
        if student is None:
            return
        if 'rpn_head' in (student.head_name, teacher.head_name) and \
                student.head_name != teacher.head_name:
            two_stage = 'teacher' if teacher.head_name == 'rpn_head' else 'student'
            rpn_type = (teacher if two_stage == 'teacher' else student).head_type
            raise ValueError(
                f"the {two_stage}'s dense head is its rpn_head ({rpn_type}: class-agnostic "
                "proposals), the other one predicts classes: their predictions cannot be "
                "compared. Fix: set model.distiller.head_source='none' to distil the FPN "
                "features only (DecoupledCosineDistiller), or use a one-stage teacher for a "
                "one-stage student")
        if student.summary[:2] != teacher.summary[:2]:
            raise ValueError(
                f'student head predicts {student.cls_out_channels} classes per anchor '
                f'(sigmoid={student.use_sigmoid}), the teacher {teacher.cls_out_channels} '
                f'(sigmoid={teacher.use_sigmoid}): teacher and student must be trained on the '
                'same classes with the same kind of classifier')
        if student.num_priors != teacher.num_priors and not student.use_sigmoid:
            raise ValueError(
                f'the student {student.head_type} has {student.num_priors} priors per location, '
                f'the teacher {teacher.head_type} {teacher.num_priors}: softmax heads can only '
                'be compared prior by prior; use the same anchor generator in both heads')

    def prepare_from_student(self, model: nn.Module) -> None:
        self.student_recorders = self._prepare(model, 'student')

    def prepare_from_teacher(self, model: nn.Module) -> None:
        self.teacher_recorders = self._prepare(model, 'teacher')

    def matched_feats(self, from_student: bool) -> List[Tensor]:
        """The recorded feature levels of :attr:`level_pairs`, (N, C, H, W) each."""
        feats = self.record('feats', from_student)
        side = 0 if from_student else 1
        return [feats[pair[side]] for pair in self.level_pairs]

    def matched_levels(self, from_student: bool) -> List[int]:
        """The ``role``'s own level index of each of :attr:`level_pairs`."""
        side = 0 if from_student else 1
        return [pair[side] for pair in self.level_pairs]

    def matched_predictions(self, from_student: bool,
                            quality_index: Optional[int] = None) -> DensePredictions:
        """The recorded dense-head outputs on :attr:`level_pairs`: class logits (per location
        when :attr:`per_location`), boxes as the head emits them, quality logits of output
        ``quality_index`` (None: none)."""
        info = self.head_outputs('student' if from_student else 'teacher')
        predictions = dense_predictions(info, self.record('head', from_student),
                                        self.matched_levels(from_student), quality_index)
        if not self.per_location:
            return predictions
        cls = [max_over_priors(c, info.num_priors) for c in predictions.cls_logits]
        quality = None if predictions.quality_logits is None else \
            [max_over_priors(q, info.num_priors) for q in predictions.quality_logits]
        return DensePredictions(cls, predictions.bbox_preds, quality)

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
