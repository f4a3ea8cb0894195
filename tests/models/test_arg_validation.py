"""Distiller and algorithm arguments are checked when the model is built: a wrong type, a value
out of range or a misspelt choice fails with the config key, the value and the fix named."""
import os.path as osp
import re
import sys

import numpy as np
import pytest

from kd_det.models.utils.arg_checks import DistillConfigError
from models.tiny_detectors import build_distill, fake_batch, tiny_detector_cfg

RELIABILITY_TESTS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'reliability')
if RELIABILITY_TESTS not in sys.path:
    sys.path.insert(0, RELIABILITY_TESTS)
from fault_table import fault_case  # noqa: E402 (docs/reliability.md's fault table)

DCD = 'DecoupledCosineDistiller'
CSL = 'ConfidenceSoftLabelDistiller'


def _build(distiller_type: str, **options):
    from mmrazor.registry import MODELS
    import kd_det  # noqa: F401
    return MODELS.build(dict(type=distiller_type, **options))


def _message(error_info) -> str:
    return str(error_info.value)


# (distiller, argument, bad value, fragments the message must hold besides key, value and 'Fix:')
BAD_DISTILLER_ARGS = [
    # loss weights: numbers >= 0
    (DCD, 'loss_fg_weight', '2.0', ['must be a number >= 0',
                                    'write model.distiller.loss_fg_weight=2.0 without quotes']),
    (DCD, 'loss_fg_weight', -1.0, ['must be >= 0', 'turns the loss into a reward']),
    (DCD, 'loss_bg_weight', -0.5, ['must be >= 0']),
    (DCD, 'loss_bg_feat_weight', float('nan'), ['must be finite and >= 0']),
    (DCD, 'loss_bg_feat_weight', True, ['must be a number >= 0']),
    (CSL, 'loss_cls_weight', -1, ['must be >= 0']),
    (CSL, 'loss_box_weight', None, ['must be a number >= 0']),
    (CSL, 'loss_feat_weight', float('inf'), ['must be finite and >= 0']),
    # temperatures, widths, powers that must be positive
    (DCD, 'temperature', 0.0, ['must be positive (> 0)']),
    (DCD, 'gate_temperature', -0.1, ['must be positive (> 0)']),
    (DCD, 'center_sigma', '0.25', ['write model.distiller.center_sigma=0.25 without quotes']),
    (CSL, 'temperature', 0, ['must be positive (> 0)']),
    (CSL, 'feat_temperature', -1.0, ['must be positive (> 0)']),
    (CSL, 'weight_power', 0.0, ['must be positive (> 0)']),
    (CSL, 'discrepancy_eps', 0.0, ['must be positive (> 0)']),
    # exponents and scales that may be 0
    (CSL, 'focal_gamma', -2.0, ['must be >= 0']),
    (CSL, 'feat_conf_bias', -1.0, ['must be >= 0']),
    (CSL, 'teacher_power', -1.0, ['must be >= 0']),
    (CSL, 'student_power', 'high', ['must be a number >= 0',
                                    'set model.distiller.student_power to a number >= 0']),
    # probabilities, thresholds, floors
    (DCD, 'gate_floor', 1.5, ['must be in [0, 1]', 'Fix: set model.distiller.gate_floor to a '
                              'number in [0, 1]']),
    (CSL, 'quality_power', 1.5, ['must be in [0, 1]']),
    (CSL, 'region_thr', -0.1, ['must be in [0, 1]']),
    (CSL, 'region_topk', 0.0, ['must be in (0, 1]']),
    (CSL, 'label_sharpening', 1.0, ['must be in [0, 1)', '1 would divide by zero']),
    (CSL, 'weight_min', 1.5, ['must be in [0, 1]']),
    (CSL, 'weight_max', 0.5, ['must be >= 1']),
    # choices: misspellings get the closest choice
    (DCD, 'fg_mode', 'assigned-center', ["did you mean 'assigned_center'?",
                                         "Fix: set model.distiller.fg_mode='assigned_center'"]),
    (DCD, 'bg_kl', 'Spatial', ["must be one of ('spatial', 'bernoulli')",
                               "did you mean 'spatial'?"]),
    (DCD, 'bg_gate', 'teacher-better', ["did you mean 'teacher_better'?"]),
    (DCD, 'gate', 'hrad', ["must be one of ('hard', 'soft', 'off')", "did you mean 'hard'?"]),
    (DCD, 'gate_level', 'objects', ["did you mean 'object'?"]),
    (DCD, 'gate_quality', 'IoU', ["must be one of ('score_iou', 'score')",
                                  'Fix: set model.distiller.gate_quality to one of these']),
    (CSL, 'region_unit', 'anchors', ["did you mean 'anchor'?"]),
    (CSL, 'region', 'top-k', ["did you mean 'topk'?"]),
    (CSL, 'box_loss', 'GIoU', ["did you mean 'giou'?"]),
    (CSL, 'feat_loss', 'cwd', ["must be one of ('conf_spatial_kl', 'standardized_region')"]),
    (CSL, 'weight_norm', 'geometrical', ["did you mean 'geometric'?"]),
    (CSL, 'quality_branch', 'Auto', ["must be 'auto', None or an int >= 0",
                                     "Fix: set model.distiller.quality_branch='auto'"]),
    (CSL, 'quality_branch', -1, ["must be 'auto', None or an int >= 0"]),
    (CSL, 'quality_branch', 2.0, ["must be 'auto', None or an int >= 0"]),
    # switches: the string 'False' is truthy
    (DCD, 'fg_center_features', 'False', [
        'must be True or False', 'write model.distiller.fg_center_features=False without quotes']),
    (CSL, 'hard_weighting', 1, ['must be True or False']),
    # module names of the base class
    (DCD, 'neck_source', '', ['must be a module name (a non-empty str)']),
    (CSL, 'head_source', None, ["must be 'auto', 'none' or a module name"]),
]


@pytest.mark.parametrize('distiller_type,key,value,fragments', BAD_DISTILLER_ARGS,
                         ids=[f'{t[:3]}-{k}-{v!r}' for t, k, v, _ in BAD_DISTILLER_ARGS])
def test_a_bad_distiller_argument_names_the_key_the_value_and_the_fix(distiller_type, key,
                                                                       value, fragments):
    with pytest.raises(DistillConfigError) as error:
        _build(distiller_type, **{key: value})
    message = _message(error)
    assert f'model.distiller.{key}' in message
    assert f'{value!r} ({type(value).__name__})' in message
    assert 'Fix:' in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_the_error_is_a_value_error_and_reaches_the_caller_of_the_algorithm_build():
    # the issue: a string weight used to surface only in the pre-flight dry run, as a
    # neck-levels/classes mismatch
    assert issubclass(DistillConfigError, ValueError)
    with fault_case("distiller argument as a string (loss_fg_weight='2.0')", lost='nothing',
                    raises=DistillConfigError) as outcome:
        build_distill('retinanet', 'retinanet', dict(type=DCD, loss_fg_weight='2.0'))
    assert re.search(r"model\.distiller\.loss_fg_weight must be a number >= 0, got '2\.0' "
                     r"\(str\)", str(outcome.error))


def test_a_negative_loss_weight_fails_the_algorithm_build_naming_the_fix():
    # the (DCD, 'loss_fg_weight', -1.0) row of BAD_DISTILLER_ARGS, built the way a config is
    with fault_case('negative distiller loss weight', lost='nothing',
                    raises=DistillConfigError) as outcome:
        build_distill('retinanet', 'retinanet', dict(type=DCD, loss_fg_weight=-1.0))
    message = str(outcome.error)
    assert 'model.distiller.loss_fg_weight' in message and '-1.0 (float)' in message
    for fragment in ['must be >= 0', 'turns the loss into a reward', 'Fix:']:
        assert fragment in message, (fragment, message)


def test_incompatible_decoupled_cosine_options_name_both_keys():
    with pytest.raises(DistillConfigError) as error:
        _build(DCD, gate_level='location')
    message = _message(error)
    assert "model.distiller.gate_level='location' needs fg_mode='all_levels'" in message
    assert "set model.distiller.fg_mode='all_levels'" in message


@pytest.mark.parametrize('key,value,fragments', [
    ('neck_source', 'nekc', ["model.distiller.neck_source='nekc'", 'the student (RetinaNet) has '
                             "no submodule 'nekc'", "did you mean 'neck'?"]),
    ('head_source', 'bbox_haed', ["model.distiller.head_source='bbox_haed'",
                                  "did you mean 'bbox_head'?", "set model.distiller.head_source "
                                  "to 'auto' or 'none', or one of them"]),
])
def test_a_module_name_the_detectors_lack_is_named_when_the_algorithm_is_built(key, value,
                                                                               fragments):
    with pytest.raises(DistillConfigError) as error:
        build_distill('retinanet', 'retinanet', dict(type=DCD, **{key: value}))
    for fragment in fragments:
        assert fragment in _message(error), (fragment, _message(error))


def test_a_quality_branch_index_past_the_head_outputs_is_named_at_the_first_step():
    algorithm = build_distill('fcos', 'fcos', dict(type=CSL, quality_branch=7))
    with pytest.raises(DistillConfigError, match=r"model\.distiller\.quality_branch=7, but the "
                       r"teacher's FCOSHead has 3 outputs"):
        algorithm.loss(*fake_batch())


# ---- algorithms ---------------------------------------------------------------------------------
def _build_algorithm(algorithm_type: str = 'DetectionDistill', distiller_type: str = CSL,
                     **options):
    from mmrazor.registry import MODELS
    import kd_det  # noqa: F401
    return MODELS.build(dict(type=algorithm_type, architecture=tiny_detector_cfg('retinanet'),
                             teacher=tiny_detector_cfg('retinanet', 64),
                             distiller=dict(type=distiller_type), **options))


BAD_ALGORITHM_ARGS = [
    ('DetectionDistill', 'teacher_head', 3, ["must be 'auto' or a module name"]),
    ('DetectionDistill', 'teacher_ckpt', 5, ['must be a file path (str) or None']),
    ('DetectionDistill', 'teacher_trainable', 'False', [
        'must be True or False', 'write model.teacher_trainable=False without quotes']),
    ('DetectionDistill', 'calculate_student_loss', 1, ['must be True or False']),
    ('SemiSupervisedDetectionDistill', 'pseudo_label_thr', 1.5, ['must be in [0, 1]']),
    ('SemiSupervisedDetectionDistill', 'pseudo_label_thr', '0.5', [
        'write model.pseudo_label_thr=0.5 without quotes']),
]


@pytest.mark.parametrize('algorithm_type,key,value,fragments', BAD_ALGORITHM_ARGS,
                         ids=[f'{k}-{v!r}' for _, k, v, _ in BAD_ALGORITHM_ARGS])
def test_a_bad_algorithm_argument_names_the_key_the_value_and_the_fix(algorithm_type, key,
                                                                       value, fragments):
    with pytest.raises(DistillConfigError) as error:
        _build_algorithm(algorithm_type, **{key: value})
    message = _message(error)
    assert f'model.{key}' in message and f'{value!r} ({type(value).__name__})' in message
    assert 'Fix:' in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_teacher_head_the_teacher_lacks_gets_the_closest_module_suggested():
    with pytest.raises(DistillConfigError) as error:
        _build_algorithm(teacher_head='bbox_haed')
    message = _message(error)
    assert "model.teacher_head='bbox_haed': the teacher (RetinaNet) has no submodule" in message
    assert "did you mean 'bbox_head'?" in message
    assert "set model.teacher_head to 'auto', None, or one of them" in message


def test_pseudo_labels_without_a_teacher_head_name_both_keys():
    with pytest.raises(DistillConfigError) as error:
        _build_algorithm('SemiSupervisedDetectionDistill', pseudo_label_thr=0.5,
                         teacher_head=None)
    message = _message(error)
    assert 'model.pseudo_label_thr=0.5 needs the teacher' in message
    assert "set model.teacher_head='auto'" in message


# ---- valid values keep working ------------------------------------------------------------------
DCD_DEFAULTS = dict(loss_fg_weight=2.0, loss_bg_weight=10.0, loss_bg_feat_weight=10.0,
                    temperature=1.0, fg_mode='assigned_center', fg_center_features=True,
                    center_sigma=0.25, bg_kl='spatial', kl_region='whole_map', bg_gate='off',
                    gate='hard', gate_temperature=0.1, gate_level='object', gate_quality='score_iou',
                    gate_floor=0.5, neck_source='neck', head_source='auto')
CSL_DEFAULTS = dict(loss_cls_weight=1.0, loss_box_weight=1.0, loss_feat_weight=10.0,
                    temperature=1.0, focal_gamma=2.0, quality_branch='auto', quality_power=0.5,
                    region_unit='anchor', region='threshold', region_thr=0.5, region_topk=0.01,
                    box_loss='auto', feat_loss='conf_spatial_kl', feat_conf_bias=1.0,
                    feat_temperature=1.0, label_sharpening=0.5, hard_weighting=True,
                    teacher_power=1.0, student_power=1.0, discrepancy_eps=0.1,
                    weight_norm='geometric', weight_power=0.5, weight_min=0.25, weight_max=4.0,
                    neck_source='neck', head_source='auto')


@pytest.mark.parametrize('distiller_type,defaults', [(DCD, DCD_DEFAULTS), (CSL, CSL_DEFAULTS)])
def test_every_distiller_builds_with_its_defaults_unchanged(distiller_type, defaults):
    distiller = _build(distiller_type)
    assert {key: getattr(distiller, key) for key in defaults} == defaults


@pytest.mark.parametrize('algorithm_type,distiller_type', [
    ('DetectionDistill', DCD), ('DetectionDistill', CSL),
    ('SemiSupervisedDetectionDistill', CSL)])
def test_every_algorithm_builds_with_its_defaults(algorithm_type, distiller_type):
    algorithm = _build_algorithm(algorithm_type, distiller_type)
    assert algorithm.teacher_head == 'bbox_head' and algorithm.teacher_ckpt is None
    assert getattr(algorithm, 'pseudo_label_thr', None) is None


@pytest.mark.parametrize('distiller_type,options', [
    # bounds themselves, ints for floats, numpy scalars, None where a default is resolved
    (DCD, dict(loss_fg_weight=0, loss_bg_weight=None, gate_floor=1, temperature=np.float32(2))),
    (DCD, dict(gate_floor=0.0, fg_mode='all_levels', gate_level='location', gate='soft')),
    (CSL, dict(region_topk=1.0, region_thr=0.0, label_sharpening=0.0, weight_min=1,
               weight_max=1, focal_gamma=0, quality_branch=None, loss_feat_weight=None)),
    (CSL, dict(quality_branch=np.int64(2), quality_power=1.0, feat_conf_bias=0.0)),
])
def test_boundary_and_equivalent_values_are_accepted_unchanged(distiller_type, options):
    distiller = _build(distiller_type, **options)
    for key, value in options.items():
        if value is not None:
            assert getattr(distiller, key) == value


def test_shipped_configs_build_their_distillers():
    import glob
    import os.path as osp

    from mmengine.config import Config
    from conftest import REPO_ROOT
    built = 0
    for path in sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)):
        if '/benchmark/' in path:
            continue
        distiller = Config.fromfile(path).get('model', {}).get('distiller')
        if distiller and distiller['type'] in (DCD, CSL):
            options = distiller.to_dict()
            _build(options.pop('type'), **options)
            built += 1
    assert built >= 5
