"""Every mmdet 3.3 dense head that kd_det's prediction distillers read: one training step each.

For each head a tiny teacher/student pair (tests/models/tiny_detectors.py) runs
``algorithm.loss`` on a 64x96 batch and a backward with DecoupledCosineDistiller and
ConfidenceSoftLabelDistiller: every loss is finite, the distill terms that should carry signal
are non-zero, the student gets gradients and the teacher none. Cross-family pairs are matched
level by level by stride.
"""
import os.path as osp

import pytest
import torch

from models.tiny_detectors import build_distill, fake_batch

from kd_det.models.utils.head_outputs import (UnsupportedHeadError, describe_dense_head,
                                              match_levels_by_stride)

DCD = dict(type='DecoupledCosineDistiller')
CSL = dict(type='ConfidenceSoftLabelDistiller')

# kind: (head class, class output, box encoding, quality output, priors per location, levels);
# docs/dense_heads.md is rendered from it (test_the_docs_table_is_the_matrix)
HEADS = {
    'retinanet': ('RetinaHead', 'logits', 'delta', None, 9, 5),
    'fcos': ('FCOSHead', 'logits', 'distance', 'centerness', 1, 5),
    'atss': ('ATSSHead', 'logits', 'delta', 'centerness', 1, 5),
    'gfl': ('GFLHead', 'logits', 'distribution', None, 1, 5),
    'tood': ('TOODHead', 'probabilities', 'direct_stride', None, 1, 5),
    'paa': ('PAAHead', 'logits', 'delta', 'centerness', 1, 5),
    'ddod': ('DDODHead', 'logits', 'delta', 'iou', 1, 5),
    'vfnet': ('VFNetHead', 'logits', 'distance', None, 1, 5),
    'autoassign': ('AutoAssignHead', 'logits', 'distance', 'centerness', 1, 5),
    'rtmdet': ('RTMDetSepBNHead', 'logits', 'distance', None, 1, 3),
    'yolox': ('YOLOXHead', 'logits', 'yolox', 'objectness', 1, 3),
    'centernet': ('CenterNetHead', 'probabilities', None, None, 1, 1),
}
ROOT = osp.join(osp.dirname(__file__), '..', '..')
DOC = osp.join(ROOT, 'docs', 'dense_heads.md')
README = osp.join(ROOT, 'README.md')
# CenterNet's width/offset maps are not boxes kd_det decodes: CSL runs without its box term
CSL_OPTIONS = {'centernet': dict(box_loss='none')}


def _train_step(algorithm):
    """One ``loss`` + ``backward``; returns the distill losses."""
    losses = algorithm.loss(*fake_batch())
    for key, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        assert all(torch.isfinite(v).all() for v in values), key
    total = sum(v for k, v in losses.items() if 'loss' in k and isinstance(v, torch.Tensor))
    total = total + sum(sum(v) for k, v in losses.items()
                        if 'loss' in k and isinstance(v, (list, tuple)))
    total.backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    return {k[len('distill.'):]: v for k, v in losses.items() if k.startswith('distill.')}


def _student_got_gradients(algorithm):
    grads = [p.grad for name, p in algorithm.student.named_parameters()
             if name.startswith('backbone.') and p.grad is not None]
    return bool(grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('kind', sorted(HEADS))
def test_each_head_is_described_from_the_head_itself(kind):
    algorithm = build_distill(kind, kind, DCD)
    info = algorithm.distiller.head_outputs('student')
    head_type, activation, encoding, quality, priors, levels = HEADS[kind]
    assert info.head_type == head_type
    assert info.cls_activated == (activation == 'probabilities')
    assert info.use_sigmoid
    assert info.box_encoding == encoding
    assert info.quality_kind == quality and (info.quality_index is None) == (quality is None)
    assert info.num_priors == priors
    assert len(info.strides) == levels
    assert algorithm.distiller.level_pairs == [(i, i) for i in range(levels)]


@pytest.mark.parametrize('kind', sorted(HEADS))
def test_decoupled_cosine_trains_one_step_on_every_head(kind):
    algorithm = build_distill(kind, kind, DCD)
    distill = _train_step(algorithm)
    for key in ('loss_fg_cos', 'loss_bg_feat', 'loss_bg_kl'):
        assert distill[key] > 0, (kind, key)
    assert _student_got_gradients(algorithm)


@pytest.mark.parametrize('kind', sorted(HEADS))
def test_confidence_soft_label_trains_one_step_on_every_head(kind):
    algorithm = build_distill(kind, kind, dict(CSL, **CSL_OPTIONS.get(kind, {})))
    distill = _train_step(algorithm)
    assert distill['loss_soft_cls'] > 0 and distill['loss_conf_feat'] > 0, kind
    if kind not in CSL_OPTIONS:
        assert distill['loss_soft_box'] >= 0
    assert _student_got_gradients(algorithm)


def test_rtmdet_has_no_quality_output_so_the_confidence_is_the_class_score():
    """The issue-17 IndexError: RTMDet subclasses ATSSHead but has no centerness output."""
    algorithm = build_distill('rtmdet', 'rtmdet', CSL)
    algorithm.loss(*fake_batch())
    distiller = algorithm.distiller
    assert distiller._quality_index() is None
    maps = distiller.confidence_maps()
    teacher_cls = distiller.matched_predictions(from_student=False).cls_logits
    for level_map, logits in zip(maps, teacher_cls):
        assert torch.allclose(level_map['confidence'], logits.sigmoid().amax(dim=1), atol=1e-6)


@pytest.mark.parametrize('teacher', ['rtmdet', 'retinanet'])
@pytest.mark.parametrize('distiller', [DCD, CSL], ids=['dcd', 'csl'])
def test_the_pre_flight_dry_run_passes_for_an_rtmdet_student(teacher, distiller):
    """Issue 17: CSL stopped here with an IndexError on RTMDet's missing quality output."""
    from kd_det.preflight import check_distill_shapes
    check_distill_shapes(build_distill('rtmdet', teacher, distiller))


def test_a_distance_head_with_negative_distances_decodes_empty_sides():
    """RTMDet without exp_on_reg regresses distances linearly; a negative one is clamped."""
    from kd_det.models.utils.dense_boxes import decode_dense_boxes
    algorithm = build_distill('rtmdet', 'rtmdet', DCD)
    head = algorithm.student.bbox_head
    pred = torch.full((1, 4, 2, 3), -5.0)
    boxes = decode_dense_boxes(head, [pred])[0]  # (1, 1, 4, 2, 3)
    assert torch.equal(boxes[:, :, :2], boxes[:, :, 2:])  # zero-size boxes at the points


@pytest.mark.parametrize('distiller', [DCD, CSL], ids=['dcd', 'csl'])
def test_a_retinanet_teacher_teaches_an_rtmdet_student_on_the_shared_strides(distiller):
    algorithm = build_distill('rtmdet', 'retinanet', distiller)
    assert algorithm.distiller.level_pairs == [(0, 0), (1, 1), (2, 2)]  # strides 8, 16, 32
    assert algorithm.distiller.per_location  # 9 anchors vs 1 point per location
    distill = _train_step(algorithm)
    assert not any(key.startswith('l3_') or key.startswith('feat_level3') for key in distill)
    assert _student_got_gradients(algorithm)


def test_a_three_level_teacher_teaches_the_first_three_levels_of_a_retinanet_student():
    algorithm = build_distill('retinanet', 'rtmdet', CSL)
    assert algorithm.distiller.level_pairs == [(0, 0), (1, 1), (2, 2)]
    distill = _train_step(algorithm)
    assert sorted(k for k in distill if k.startswith('feat_level')) == \
        ['feat_level0', 'feat_level1', 'feat_level2']
    assert _student_got_gradients(algorithm)


# v1 of both distillers, as configs/*/..._v1.py spell them out
V1 = {
    'dcd': dict(DCD, fg_mode='all_levels', fg_center_features=False, bg_kl='bernoulli',
                bg_gate='teacher_better', loss_bg_feat_weight=0.0, gate_quality='score',
                gate_floor=0.0, loss_bg_weight=1.0),
    'csl': dict(CSL, region_unit='cell', feat_loss='standardized_region',
                weight_norm='mean_clamp', label_sharpening=0.0, loss_feat_weight=1.0),
}


@pytest.mark.parametrize('version', sorted(V1))
@pytest.mark.parametrize('student,teacher', [('rtmdet', 'rtmdet'), ('rtmdet', 'retinanet')])
def test_v1_options_train_on_rtmdet_and_across_families(student, teacher, version):
    algorithm = build_distill(student, teacher, V1[version])
    _train_step(algorithm)
    assert _student_got_gradients(algorithm)


def test_an_atss_teacher_teaches_a_yolox_student():
    algorithm = build_distill('yolox', 'atss', DCD)
    assert algorithm.distiller.level_pairs == [(0, 0), (1, 1), (2, 2)]
    assert not algorithm.distiller.per_location
    distill = _train_step(algorithm)
    assert distill['loss_bg_kl'] > 0


def test_strides_are_matched_whatever_the_order_and_must_share_one():
    assert match_levels_by_stride([8, 16, 32], [8, 16, 32, 64, 128]) == [(0, 0), (1, 1), (2, 2)]
    assert match_levels_by_stride([16, 32, 64], [8, 16, 32]) == [(0, 1), (1, 2)]
    with pytest.raises(ValueError, match=r'strides \(4\), the teacher \(8, 16, 32\): no level'):
        match_levels_by_stride([4], [8, 16, 32])


def test_a_faster_rcnn_teacher_for_a_one_stage_student_names_the_cause_and_the_fix():
    with pytest.raises(ValueError, match=r"the teacher's dense head is its rpn_head \(RPNHead: "
                       r"class-agnostic proposals\).*head_source='none'"):
        build_distill('retinanet', 'faster_rcnn', DCD)


@pytest.mark.parametrize('student', ['retinanet', 'rtmdet'])
def test_a_faster_rcnn_teachers_fpn_teaches_a_one_stage_student_features_only(student):
    algorithm = build_distill(student, 'faster_rcnn', dict(DCD, head_source='none'),
                              teacher_head=None)
    assert algorithm.distiller.head_outputs('teacher') is None
    # Faster R-CNN's FPN has strides 4-64, RetinaNet's 8-128, RTMDet's 8-32
    assert algorithm.distiller.level_pairs == [(0, 1), (1, 2), (2, 3)] + \
        ([(3, 4)] if student == 'retinanet' else [])
    distill = _train_step(algorithm)
    assert distill['loss_fg_cos'] > 0 and distill['loss_bg_feat'] > 0
    assert 'loss_bg_kl' not in distill  # no prediction term without the heads
    assert _student_got_gradients(algorithm)


def test_confidence_soft_label_refuses_features_only_and_says_why():
    from kd_det.models.utils.arg_checks import DistillConfigError
    with pytest.raises(DistillConfigError, match=r"model.distiller.head_source='none': "
                       r"ConfidenceSoftLabelDistiller builds its soft labels.*needs both dense "
                       r"heads"):
        build_distill('retinanet', 'faster_rcnn', dict(CSL, head_source='none'))


def test_a_head_that_packs_classes_with_boxes_is_refused_by_name():
    from mmdet.models.dense_heads import YOLOV3Head
    head = YOLOV3Head(num_classes=3, in_channels=[16, 8, 4], out_channels=[16, 8, 4])
    feats = [torch.zeros(1, c, s, s) for c, s in zip([16, 8, 4], [4, 8, 16])]
    with torch.no_grad():
        outputs = head(feats)
    with pytest.raises(UnsupportedHeadError, match=r'the first output of YOLOV3Head \(bbox_head\) '
                       r'has \[24\] channels per location, not 3 priors x 3 classes'):
        describe_dense_head(head, 'bbox_head', outputs, [32, 16, 8])


def render_heads_table() -> str:
    """The supported-heads table of docs/dense_heads.md, from :data:`HEADS`."""
    lines = ['| head (mmdet 3.3) | class output | box encoding | quality output | priors / location '
             '| levels (tiny test) | DecoupledCosine | ConfidenceSoftLabel |',
             '|---|---|---|---|---|---|---|---|']
    for kind, (head_type, activation, encoding, quality, priors, levels) in HEADS.items():
        csl = 'yes'
        if kind in CSL_OPTIONS:
            csl = 'yes, with ' + ', '.join(f'`{k}={v!r}`' for k, v in CSL_OPTIONS[kind].items())
        lines.append(f'| `{head_type}` | sigmoid {activation} | '
                     f'{f"`{encoding}`" if encoding else "not decoded (score-only gate)"} | '
                     f'{quality or "none"} | {priors} | {levels} | yes | {csl} |')
    return '\n'.join(lines) + '\n'


def test_the_docs_table_is_the_matrix():
    with open(DOC, encoding='utf-8') as f:
        doc = f.read()
    table = render_heads_table()
    assert table in doc, f'docs/dense_heads.md is out of date; its table should read:\n{table}'


def render_readme_heads() -> str:
    """The README's one-paragraph list of supported heads, from :data:`HEADS`."""
    heads = ', '.join(f'`{head_type}`' for head_type, *_ in HEADS.values())
    return (f'Both distillers run on {len(HEADS)} mmdet 3.3 dense heads: {heads}.\n')


def test_the_readme_lists_the_heads_of_the_matrix():
    with open(README, encoding='utf-8') as f:
        readme = f.read()
    line = render_readme_heads()
    assert line in readme, f'README.md is out of date; its head list should read:\n{line}'
