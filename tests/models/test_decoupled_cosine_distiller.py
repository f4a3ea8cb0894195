"""DecoupledCosineDistiller inside DetectionDistill: heads, pairs, gradients, edge cases, v1."""
import pytest
import torch

from models.tiny_detectors import build_distill, fake_batch

DCD = dict(type='DecoupledCosineDistiller')
# v1 as kd_det first shipped it (configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_v1.py)
DCD_V1 = dict(DCD, fg_mode='all_levels', fg_center_features=False, bg_kl='bernoulli',
              bg_gate='teacher_better', loss_bg_feat_weight=0.0, gate_quality='score',
              gate_floor=0.0, loss_fg_weight=2.0, loss_bg_weight=1.0)
V2_KEYS = ('distill.loss_fg_cos', 'distill.loss_bg_feat', 'distill.loss_bg_kl',
           'distill.fg_gate_ratio')


def _distill_losses(algorithm, inputs, samples):
    losses = algorithm.loss(inputs, samples)
    return {k: v for k, v in losses.items() if k.startswith('distill.')}, losses


@pytest.mark.parametrize('kind', ['retinanet', 'fcos', 'atss', 'gfl'])
def test_builds_and_distills_every_dense_head_kind(kind):
    algorithm = build_distill(kind, kind, DCD)
    distill, losses = _distill_losses(algorithm, *fake_batch())
    for key in V2_KEYS:
        assert key in distill and torch.isfinite(distill[key]), (kind, key)
    assert distill['distill.loss_bg_feat'] > 0 and distill['distill.loss_bg_kl'] > 0
    assert 0.0 <= distill['distill.fg_gate_ratio'] <= 1.0
    # every object is assigned to exactly one level
    shares = [float(distill[f'distill.l{i}_objects']) for i in range(5)]
    assert sum(shares) == pytest.approx(1.0)
    assert any(k.startswith('student.') for k in losses)


def test_gradients_reach_the_student_and_connectors_never_the_teacher():
    algorithm = build_distill('retinanet', 'retinanet', DCD)
    distill, _ = _distill_losses(algorithm, *fake_batch())
    sum(v for k, v in distill.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    assert algorithm.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert algorithm.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert algorithm.distiller.feature_connectors[0].weight.grad.abs().sum() > 0


def test_heterogeneous_pair_resnet_teacher_mobilenet_student_narrower_neck():
    algorithm = build_distill('retinanet', 'retinanet', DCD, student_backbone='mobilenet',
                              student_neck=16, teacher_neck=64)
    connector = algorithm.distiller.feature_connectors[0]
    assert connector.in_channels == 16 and connector.out_channels == 64
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert all(torch.isfinite(distill[k]) for k in V2_KEYS)


def test_two_stage_student_gets_feature_terms_and_rpn_objectness_terms():
    algorithm = build_distill('faster_rcnn', 'faster_rcnn', DCD)
    assert algorithm.distiller.head_spec == (1, True, 'rpn_head')
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert torch.isfinite(distill['distill.loss_fg_cos']) and distill['distill.loss_fg_cos'] > 0
    assert torch.isfinite(distill['distill.loss_bg_kl']) and distill['distill.loss_bg_kl'] > 0


def test_feature_only_teacher_distills_foreground_on_every_level_ungated():
    algorithm = build_distill('retinanet', 'retinanet', DCD, teacher_head=None)
    algorithm.distiller._head_specs.clear()  # as if neither model had a dense head
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert 'distill.loss_bg_kl' not in distill
    assert all(float(distill[f'distill.l{i}_objects']) == 1.0 for i in range(5))
    assert distill['distill.loss_fg_cos'] > 0 and distill['distill.loss_bg_feat'] > 0


def test_images_without_objects_give_zero_foreground_loss_and_finite_background_loss():
    algorithm = build_distill('retinanet', 'retinanet', DCD)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    distill, _ = _distill_losses(algorithm, *fake_batch(boxes=empty))
    assert distill['distill.loss_fg_cos'].item() == 0.0
    assert distill['distill.fg_gate_ratio'].item() == 0.0
    for key in ('distill.loss_bg_feat', 'distill.loss_bg_kl'):
        assert torch.isfinite(distill[key]) and distill[key] > 0


def test_a_teacher_no_better_than_the_student_teaches_nothing():
    # identical networks and weights: features align, spatial distributions agree, and the
    # gate never opens since the teacher never beats the student
    for distiller in (DCD, DCD_V1):
        algorithm = build_distill('retinanet', 'retinanet', distiller, teacher_neck=32)
        algorithm.teacher.load_state_dict(algorithm.student.state_dict())
        algorithm.eval()  # same BN behaviour in both
        distill, _ = _distill_losses(algorithm, *fake_batch())
        assert distill['distill.fg_gate_ratio'].item() == 0.0
        for key, value in distill.items():
            if 'loss' in key:
                assert value.item() == pytest.approx(0.0, abs=1e-5), key


def test_closed_gate_keeps_the_floor_of_the_foreground_signal(monkeypatch):
    algorithm = build_distill('retinanet', 'retinanet', dict(DCD, gate_floor=0.25))
    distiller = algorithm.distiller
    inputs, samples = fake_batch()
    open_loss = _distill_losses(algorithm, inputs, samples)[0]['distill.loss_fg_cos']

    def qualities_with(student_offset):
        def qualities(step, boxes, labels, insides):
            teacher = torch.zeros(boxes.shape[:2] + (len(insides), ))
            teacher[..., 0] = 0.5  # every object assigned to P3
            return teacher, teacher + student_offset
        return qualities

    teacher_always_better, teacher_always_worse = qualities_with(-0.1), qualities_with(0.1)
    monkeypatch.setattr(distiller, '_qualities', teacher_always_better)
    better = _distill_losses(algorithm, inputs, samples)[0]
    monkeypatch.setattr(distiller, '_qualities', teacher_always_worse)
    worse = _distill_losses(algorithm, inputs, samples)[0]
    assert better['distill.fg_gate_ratio'].item() == 1.0
    assert worse['distill.fg_gate_ratio'].item() == 0.0
    assert worse['distill.loss_fg_cos'].item() == pytest.approx(
        0.25 * better['distill.loss_fg_cos'].item(), rel=1e-5)
    assert float(better['distill.l0_objects']) == 1.0
    assert open_loss > 0


@pytest.mark.parametrize('kind,fg,bg', [('retinanet', 5.9456511, 5.7737598),
                                        ('fcos', 5.8151207, 0.2983617)])
def test_v1_options_reproduce_the_first_version_exactly(kind, fg, bg):
    # values printed by kd_det's v1 code (before v2) for this seed, fg x6 / bg x10, gate off
    torch.manual_seed(0)
    algorithm = build_distill(kind, kind, dict(DCD_V1, gate='off', loss_fg_weight=6.0,
                                               loss_bg_weight=10.0))
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert distill['distill.loss_fg_cos'].item() == pytest.approx(fg, rel=1e-5)
    assert distill['distill.loss_bg_kl'].item() == pytest.approx(bg, rel=1e-5)
    assert 'distill.loss_bg_feat' not in distill
    assert distill['distill.bg_gate_ratio'].item() == 1.0


def test_v1_gate_off_keeps_every_location_and_soft_gate_is_fractional():
    off = build_distill('retinanet', 'retinanet', dict(DCD_V1, gate='off'))
    distill, _ = _distill_losses(off, *fake_batch())
    assert distill['distill.fg_gate_ratio'].item() == 1.0
    assert distill['distill.bg_gate_ratio'].item() == 1.0
    soft = build_distill('retinanet', 'retinanet', dict(DCD_V1, gate='soft'))
    distill, _ = _distill_losses(soft, *fake_batch())
    assert 0.0 < distill['distill.bg_gate_ratio'].item() < 1.0


def test_losses_stay_finite_under_bf16_autocast():
    algorithm = build_distill('retinanet', 'retinanet', DCD)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        losses = algorithm.loss(*fake_batch())
    total, _ = algorithm.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in algorithm.student.parameters()
               if p.grad is not None)


@pytest.mark.parametrize('options,message', [
    (dict(gate='maybe'), 'gate must be one of'),
    (dict(fg_mode='everywhere'), 'fg_mode must be one of'),
    (dict(bg_kl='l2'), 'bg_kl must be one of'),
    (dict(gate_quality='iou'), 'gate_quality must be one of'),
    (dict(gate_level='location'), "needs fg_mode='all_levels'"),
    (dict(gate_floor=1.5), r'gate_floor must be in \[0, 1\]'),
])
def test_bad_options_fail_with_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        build_distill('retinanet', 'retinanet', dict(DCD, **options))


def test_mismatched_classes_fail_with_a_clear_error():
    from models.tiny_detectors import tiny_detector_cfg
    from mmrazor.registry import MODELS
    teacher = tiny_detector_cfg('retinanet', 64)
    teacher.bbox_head.num_classes = 5
    with pytest.raises(ValueError, match='same classes'):
        MODELS.build(dict(type='DetectionDistill',
                          architecture=tiny_detector_cfg('retinanet', 32), teacher=teacher,
                          distiller=DCD))


def test_mean_direction_cosine_is_one_for_a_constant_direction_and_ignores_background():
    from kd_det.models.distillers.decoupled_cosine_distiller import _mean_direction_cosine
    feat = torch.ones(2, 3, 2, 2)
    feat[:, :, 1, 1] = torch.tensor([-1.0, 5.0, 0.0]).view(1, 3)  # background, another direction
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)
    mask[:, 0, 0] = True
    # mean vector over all cells: (0.5, 2, 0.75) per image; cos with (1, 1, 1) on the fg cells
    mean = torch.tensor([0.5, 2.0, 0.75])
    expected = float(mean.sum() / (mean.norm() * 3**0.5))
    assert _mean_direction_cosine([feat], [mask]).item() == pytest.approx(expected, rel=1e-5)
    assert _mean_direction_cosine([feat], [torch.zeros_like(mask)]).item() == 0.0


def test_whole_map_kl_region_covers_every_cell_and_leaves_the_cosine_alone():
    from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
    inputs, samples = fake_batch()
    results = {}
    for region in ('background', 'whole_map'):
        torch.manual_seed(0)
        algorithm = build_distill('retinanet', 'retinanet', dict(DCD, kl_region=region))
        distill, _ = _distill_losses(algorithm, inputs, samples)
        results[region] = (distill, algorithm.distiller._step())
    distill, step = results['whole_map']
    for level, key in ((0, 'feats'), (4, 'logits')):
        s, t = step[f'student_{key}'][level], step[f'teacher_{key}'][level]
        expected = channel_spatial_kl(s, t).mean()  # no mask: every cell
        name = 'bg_feat' if key == 'feats' else 'bg_kl'
        assert distill[f'distill.l{level}_{name}'].item() == pytest.approx(expected.item(),
                                                                           rel=1e-5)
    background = results['background'][0]
    assert distill['distill.loss_fg_cos'].item() == pytest.approx(
        background['distill.loss_fg_cos'].item(), rel=1e-6)
    # P3 holds foreground cells, so cutting them out changes the feature KL there
    assert distill['distill.l0_bg_feat'].item() != pytest.approx(
        background['distill.l0_bg_feat'].item(), rel=1e-3)


def test_kl_region_must_be_a_known_choice():
    with pytest.raises(ValueError, match="kl_region"):
        build_distill('retinanet', 'retinanet', dict(DCD, kl_region='foreground'))
