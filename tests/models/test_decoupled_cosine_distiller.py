"""DecoupledCosineDistiller inside DetectionDistill: heads, pairs, gradients, edge cases."""
import pytest
import torch

from models.tiny_detectors import build_distill, fake_batch

DCD = dict(type='DecoupledCosineDistiller', loss_fg_weight=2.0, loss_bg_weight=1.0)


def _distill_losses(algorithm, inputs, samples):
    losses = algorithm.loss(inputs, samples)
    return {k: v for k, v in losses.items() if k.startswith('distill.')}, losses


@pytest.mark.parametrize('kind', ['retinanet', 'fcos', 'atss', 'gfl'])
def test_builds_and_distills_every_dense_head_kind(kind):
    algorithm = build_distill(kind, kind, DCD)
    distill, losses = _distill_losses(algorithm, *fake_batch())
    for key in ('distill.loss_fg_cos', 'distill.loss_bg_kl', 'distill.fg_gate_ratio',
                'distill.bg_gate_ratio'):
        assert key in distill and torch.isfinite(distill[key]), (kind, key)
    assert 0.0 <= distill['distill.fg_gate_ratio'] <= 1.0
    assert any(k.startswith('student.') for k in losses)


def test_gradients_reach_the_student_and_connectors_never_the_teacher():
    # gate off: with random networks the gate may close whole levels, hiding the gradient path
    algorithm = build_distill('retinanet', 'retinanet', dict(DCD, gate='off'))
    distill, _ = _distill_losses(algorithm, *fake_batch())
    (distill['distill.loss_fg_cos'] + distill['distill.loss_bg_kl']).backward()
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
    assert torch.isfinite(distill['distill.loss_fg_cos'])


def test_two_stage_student_gets_feature_terms_and_rpn_objectness_terms():
    # gate off: two random networks decide the object gate by chance, and it may close all
    algorithm = build_distill('faster_rcnn', 'faster_rcnn', dict(DCD, gate='off'))
    assert algorithm.distiller.head_spec == (1, True, 'rpn_head')
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert torch.isfinite(distill['distill.loss_fg_cos']) and distill['distill.loss_fg_cos'] > 0
    assert torch.isfinite(distill['distill.loss_bg_kl'])


def test_images_without_objects_give_zero_foreground_loss_and_finite_background_loss():
    algorithm = build_distill('retinanet', 'retinanet', DCD)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    distill, _ = _distill_losses(algorithm, *fake_batch(boxes=empty))
    assert distill['distill.loss_fg_cos'].item() == 0.0
    assert distill['distill.fg_gate_ratio'].item() == 0.0
    assert torch.isfinite(distill['distill.loss_bg_kl']) and distill['distill.loss_bg_kl'] > 0


def test_a_teacher_no_better_than_the_student_teaches_nothing():
    # identical networks and weights: features align (cos loss 0), predictions agree (KL 0)
    # and the strict gate never opens, since the teacher never beats the student
    algorithm = build_distill('retinanet', 'retinanet', DCD, teacher_neck=32)
    algorithm.teacher.load_state_dict(algorithm.student.state_dict())
    algorithm.eval()  # same BN behaviour in both
    distill, _ = _distill_losses(algorithm, *fake_batch())
    assert distill['distill.fg_gate_ratio'].item() == 0.0
    assert distill['distill.bg_gate_ratio'].item() == 0.0
    assert distill['distill.loss_fg_cos'].item() == pytest.approx(0.0, abs=1e-6)
    assert distill['distill.loss_bg_kl'].item() == pytest.approx(0.0, abs=1e-6)


def test_gate_off_keeps_every_location_and_soft_gate_is_fractional():
    off = build_distill('retinanet', 'retinanet', dict(DCD, gate='off'))
    distill, _ = _distill_losses(off, *fake_batch())
    assert distill['distill.fg_gate_ratio'].item() == 1.0
    assert distill['distill.bg_gate_ratio'].item() == 1.0
    soft = build_distill('retinanet', 'retinanet', dict(DCD, gate='soft'))
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


def test_bad_options_and_mismatched_classes_fail_with_clear_errors():
    with pytest.raises(ValueError, match="gate must be one of"):
        build_distill('retinanet', 'retinanet', dict(DCD, gate='maybe'))
    from models.tiny_detectors import tiny_detector_cfg
    from mmrazor.registry import MODELS
    teacher = tiny_detector_cfg('retinanet', 64)
    teacher.bbox_head.num_classes = 5
    with pytest.raises(ValueError, match='same classes'):
        MODELS.build(dict(type='DetectionDistill',
                          architecture=tiny_detector_cfg('retinanet', 32), teacher=teacher,
                          distiller=DCD))
