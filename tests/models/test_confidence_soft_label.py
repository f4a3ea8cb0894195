"""ConfidenceSoftLabelDistiller: loss math, confidence per head type, regions, hard-sample
weights, box decoding, and the distiller inside (semi-supervised) DetectionDistill."""
import math

import pytest
import torch

from kd_det.models.losses.box_distill import giou_distance
from kd_det.models.losses.feature_imitation import standardized_feature_distance
from kd_det.models.losses.prediction_kl import softmax_kl
from kd_det.models.losses.soft_label import (confidence_temperature, soft_focal_bce,
                                             soft_label_loss)
from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
from kd_det.models.utils.confidence import (class_margin, location_confidence,
                                            prediction_discrepancy, teacher_reliability)
from kd_det.models.utils.dense_boxes import box_prediction_kind, decode_dense_boxes
from kd_det.models.utils.head_outputs import quality_branch_index
from kd_det.models.utils.gates import dense_class_probs
from kd_det.models.utils.hard_samples import (balance_weights, geometric_balance_weights,
                                              hard_sample_scores, weight_statistics)
from kd_det.models.utils.region_selection import select_confident_regions, select_region_anchors
from models.tiny_detectors import NUM_CLASSES, build_distill, fake_batch, tiny_detector_cfg

CSL = dict(type='ConfidenceSoftLabelDistiller')
V1 = dict(region_unit='cell', feat_loss='standardized_region', weight_norm='mean_clamp',
          label_sharpening=0.0)
HEAD_KINDS = ['retinanet', 'fcos', 'atss', 'gfl']


# ---- soft-label, box and feature losses on hand-made tensors ------------------------------------
def test_soft_focal_bce_known_values():
    # student p = 0.5 (logit 0), teacher 1: BCE = ln 2, modulation |0.5 - 1|^2 = 0.25
    loss = soft_focal_bce(torch.zeros(1, 2), torch.ones(1, 2), gamma=2.0)
    assert loss.shape == (1, )
    assert loss.item() == pytest.approx(2 * 0.25 * math.log(2), rel=1e-5)
    # gamma 0 is plain soft BCE: -(t log p + (1-t) log(1-p)) with p = sigmoid(1), t = 0.3
    p = torch.sigmoid(torch.tensor(1.0))
    expected = -(0.3 * torch.log(p) + 0.7 * torch.log(1 - p))
    assert soft_focal_bce(torch.tensor([[1.0]]), torch.tensor([[0.3]]), gamma=0.0).item() == \
        pytest.approx(expected.item(), rel=1e-5)


def test_soft_focal_bce_is_zero_where_student_matches_teacher_and_finite_for_huge_logits():
    logits = torch.tensor([[-3.0, 0.0, 2.5]])
    assert soft_focal_bce(logits, logits.sigmoid()).item() == pytest.approx(0.0, abs=1e-7)
    huge = soft_focal_bce(torch.tensor([[-1e4, 1e4]]), torch.tensor([[1.0, 0.0]]))
    assert torch.isfinite(huge) and huge.item() > 1e3


def test_soft_focal_bce_grows_with_the_gap_to_the_teacher():
    targets = torch.full((1, 1), 0.9)
    losses = [soft_focal_bce(torch.tensor([[v]]), targets).item() for v in (2.0, 0.0, -2.0)]
    assert losses[0] < losses[1] < losses[2]


def test_soft_label_loss_dispatch_and_temperature():
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    assert torch.allclose(soft_label_loss(student, teacher, use_sigmoid=False, temperature=2.0),
                          softmax_kl(student, teacher, 2.0))
    expected = soft_focal_bce(student / 2.0, (teacher / 2.0).sigmoid(), 2.0) * 4.0
    assert torch.allclose(soft_label_loss(student, teacher, True, 2.0, 2.0), expected)
    with pytest.raises(ValueError, match='temperature'):
        soft_label_loss(student, teacher, True, temperature=0.0)


def test_sharpened_targets_on_known_logits():
    student = torch.tensor([[0.3, -1.0], [0.3, -1.0]])
    teacher = torch.tensor([[1.5, -2.0], [1.5, -2.0]])
    # confidence 1 with sharpening 0.5 halves the teacher's temperature: its logits double;
    # confidence 0 keeps them
    temperature = confidence_temperature(torch.tensor([1.0, 0.0]), 1.0, 0.5)
    assert temperature.tolist() == [0.5, 1.0]
    loss = soft_label_loss(student, teacher, True, 2.0, 1.0, temperature)
    assert loss[0].item() == pytest.approx(
        soft_focal_bce(student[:1], (2 * teacher[:1]).sigmoid()).item(), rel=1e-6)
    assert loss[1].item() == pytest.approx(soft_label_loss(student, teacher, True)[1].item(),
                                           rel=1e-6)
    # the student keeps T: at T = 2 the target is sigmoid(t / 1), the student's logits s / 2
    at_t2 = soft_label_loss(student, teacher, True, 2.0, 2.0,
                            confidence_temperature(torch.ones(2), 2.0, 0.5))
    assert torch.allclose(at_t2, soft_focal_bce(student / 2, teacher.sigmoid()) * 4)
    # softmax heads: the teacher's softmax at the per-anchor temperature
    softmax = soft_label_loss(student, teacher, False, target_temperature=temperature)
    assert softmax[0].item() == pytest.approx(softmax_kl(student, 2 * teacher)[0].item(),
                                              rel=1e-6)
    assert softmax[1].item() == pytest.approx(softmax_kl(student, teacher)[1].item(), rel=1e-6)
    # sharpening 0 is exactly the plain soft label
    plain = confidence_temperature(torch.tensor([1.0, 0.3]), 1.0, 0.0)
    assert torch.equal(soft_label_loss(student, teacher, True, target_temperature=plain),
                       soft_label_loss(student, teacher, True))
    with pytest.raises(ValueError, match='sharpening'):
        confidence_temperature(torch.ones(1), 1.0, 1.0)


def test_confidence_biased_spatial_kl():
    feats = torch.randn(2, 4, 3, 5)
    bias = torch.log1p(torch.rand(2, 3, 5))
    assert channel_spatial_kl(feats, feats, bias=bias).abs().max() < 1e-6
    # one channel on two cells: a flat teacher, a fully confident first cell (bias log 2)
    teacher, student = torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 0.0]]]])
    bias = torch.log1p(torch.tensor([[[1.0, 0.0]]]))

    def kl(p_t, s_logits):
        p_s = torch.tensor(s_logits).softmax(dim=0).tolist()
        return sum(t * math.log(t / s) for t, s in zip(p_t, p_s))

    # the confident cell's share of the teacher's channel doubles: [1/2, 1/2] -> [2/3, 1/3]
    biased = channel_spatial_kl(student, teacher, bias=bias).item()
    assert biased == pytest.approx(kl([2 / 3, 1 / 3], [1.0 + math.log(2.0), 0.0]), rel=1e-5)
    plain = channel_spatial_kl(student, teacher).item()
    assert plain == pytest.approx(kl([0.5, 0.5], [1.0, 0.0]), rel=1e-5)
    assert biased < 0.9 * plain


def test_giou_distance_known_values():
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert giou_distance(box, box).item() == pytest.approx(0.0, abs=1e-6)
    # half-overlapping: IoU 2/6, enclosing box = union: GIoU = IoU, distance 2/3
    shifted = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    assert giou_distance(shifted, box).item() == pytest.approx(2 / 3, rel=1e-4)
    # disjoint, gap of 2: IoU 0, enclosure 6x2 = 12, union 8: GIoU = -(12 - 8)/12
    far = torch.tensor([[4.0, 0.0, 6.0, 2.0]])
    assert giou_distance(far, box).item() == pytest.approx(1 + 4 / 12, rel=1e-4)
    assert giou_distance(box.view(1, 1, 4), box.view(1, 1, 4)).shape == (1, 1)


def test_standardized_feature_distance_ignores_scale_and_offset():
    teacher = torch.randn(2, 8, 5, 7)
    distance = standardized_feature_distance(3.0 * teacher + 1.0, teacher)
    assert distance.shape == (2, 5, 7)
    assert distance.abs().max().item() < 1e-4
    assert standardized_feature_distance(-teacher, teacher).mean().item() == pytest.approx(
        2.0, rel=1e-3)  # 0.5 * (2 z)^2 averaged: 2 * E[z^2] = 2


# ---- confidence per head type -------------------------------------------------------------------
def _head_outputs(kind):
    from mmdet.registry import MODELS
    detector = MODELS.build(tiny_detector_cfg(kind))
    detector.init_weights()
    detector.eval()
    with torch.no_grad():
        outs = detector.bbox_head(detector.extract_feat(torch.randn(2, 3, 64, 96)))
    return detector.bbox_head, outs


@pytest.mark.parametrize('kind', HEAD_KINDS)
def test_confidence_maps_for_each_head_kind(kind):
    head, outs = _head_outputs(kind)
    index = quality_branch_index(head, outs)
    assert index == (2 if kind in ('fcos', 'atss') else None)
    for level, cls_logits in enumerate(outs[0]):
        probs = dense_class_probs(cls_logits, head.cls_out_channels, True)
        quality = None if index is None else outs[index][level]
        confidence = location_confidence(probs, True, quality)
        n, channels, h, w = cls_logits.shape
        assert confidence.shape == (n, channels // NUM_CLASSES, h, w)
        assert confidence.min() >= 0 and confidence.max() <= 1
        if quality is not None:  # the quality branch is used: sqrt(p * q)
            expected = (probs.amax(dim=2) * quality.sigmoid()).sqrt()
            assert torch.allclose(confidence, expected, atol=1e-6)
            assert not torch.allclose(confidence, probs.amax(dim=2))
        else:
            assert torch.allclose(confidence, probs.amax(dim=2))


def test_location_confidence_quality_power_and_softmax_background():
    probs = torch.tensor([0.64, 0.1]).view(1, 1, 2, 1, 1)
    quality = torch.logit(torch.tensor(0.25)).view(1, 1, 1, 1)
    assert location_confidence(probs, True, quality, 0.5).item() == pytest.approx(0.4)
    assert location_confidence(probs, True, quality, 0.0).item() == pytest.approx(0.64)
    assert location_confidence(probs, True, quality, 1.0).item() == pytest.approx(0.25)
    # softmax heads: the background (last) class never counts as confidence
    softmax_probs = torch.tensor([0.1, 0.2, 0.7]).view(1, 1, 3, 1, 1)
    assert location_confidence(softmax_probs, False).item() == pytest.approx(0.2)


def test_reliability_is_low_for_ambiguous_or_unsure_teachers():
    probs = torch.tensor([[0.9, 0.05], [0.6, 0.6], [0.2, 0.01]]).T.reshape(1, 1, 2, 1, 3)
    confidence = probs.amax(dim=2)
    margin = class_margin(probs, True)
    assert torch.allclose(margin.flatten(), torch.tensor([1 - 0.05 / 0.9, 0.0, 1 - 0.01 / 0.2]))
    reliability = teacher_reliability(probs, confidence, True).flatten()
    assert reliability[1] == 0  # torn between two classes
    assert reliability[0] > reliability[2] > reliability[1]
    single = torch.tensor([0.3]).view(1, 1, 1, 1, 1)
    assert class_margin(single, True).item() == 1.0  # one class: nothing to be torn between
    student = torch.tensor([0.1, 0.5]).view(1, 1, 2, 1, 1)
    teacher = torch.tensor([0.7, 0.4]).view(1, 1, 2, 1, 1)
    assert prediction_discrepancy(student, teacher).item() == pytest.approx(0.6)


# ---- region selection ---------------------------------------------------------------------------
def test_threshold_regions():
    maps = [torch.tensor([[[0.1, 0.6], [0.5, 0.49]]]), torch.tensor([[[0.9]]])]
    regions = select_confident_regions(maps, 'threshold', threshold=0.5)
    assert regions[0].tolist() == [[[False, True], [True, False]]]
    assert regions[1].tolist() == [[[True]]]


def test_topk_regions_pick_the_most_confident_cells_over_all_levels_per_image():
    level0 = torch.tensor([[[0.1, 0.2], [0.3, 0.8]], [[0.9, 0.0], [0.0, 0.0]]])  # (2, 2, 2)
    level1 = torch.tensor([[[0.7]], [[0.95]]])  # (2, 1, 1)
    regions = select_confident_regions([level0, level1], 'topk', topk_ratio=0.4)  # k = 2 of 5
    assert regions[0][0].tolist() == [[False, False], [False, True]]
    assert regions[1][0].tolist() == [[True]]
    assert regions[0][1].tolist() == [[True, False], [False, False]]
    assert regions[1][1].tolist() == [[True]]
    assert sum(int(r[i].sum()) for r in regions for i in range(2)) == 4
    tiny = select_confident_regions([level0, level1], 'topk', topk_ratio=1e-6)
    assert sum(int(r[0].sum()) for r in tiny) == 1  # at least one cell per image
    with pytest.raises(ValueError, match='region mode'):
        select_confident_regions([level0], 'top-k')


def test_regions_per_anchor_or_per_cell():
    # one image, two anchors per cell, two cells: only anchor 0 of cell 0 is confident
    confidence = torch.tensor([[0.9, 0.2], [0.1, 0.3]]).view(1, 2, 1, 2)  # (N, A, H, W)
    anchor, = select_region_anchors([confidence], 'anchor', threshold=0.5)
    assert anchor.shape == (1, 2, 1, 2)
    assert anchor[0, :, 0].tolist() == [[True, False], [False, False]]
    # v1: the cell is selected by its best anchor and spread to both of its anchors
    cell, = select_region_anchors([confidence], 'cell', threshold=0.5)
    assert cell[0, :, 0].tolist() == [[True, False], [True, False]]
    v1_cells, = select_confident_regions([confidence.amax(dim=1)], 'threshold', 0.5)
    assert torch.equal(cell, v1_cells[:, None].expand_as(confidence))
    # top-k counts anchors in anchor mode (k = 2 of 4), cells in cell mode (k = 1 of 2)
    topk, = select_region_anchors([confidence], 'anchor', 'topk', topk_ratio=0.5)
    assert topk[0, :, 0].tolist() == [[True, False], [False, True]]
    topk_cell, = select_region_anchors([confidence], 'cell', 'topk', topk_ratio=0.5)
    assert topk_cell[0, :, 0].tolist() == [[True, False], [True, False]]
    with pytest.raises(ValueError, match='region unit'):
        select_region_anchors([confidence], 'pixel')


# ---- hard-sample weights ------------------------------------------------------------------------
def test_hard_sample_scores_are_monotone():
    reliability = torch.tensor([[0.1, 0.5, 0.9, 0.5, 0.5]])
    discrepancy = torch.tensor([[0.3, 0.3, 0.3, 0.0, 0.8]])
    scores = hard_sample_scores(reliability, discrepancy).flatten()
    assert scores[0] < scores[1] < scores[2]  # more reliable teacher: more weight
    assert scores[3] < scores[1] < scores[4]  # student further from the teacher: more weight
    assert scores[3] > 0  # eps: an imitated sample does not vanish


def test_balanced_weights_have_mean_one_and_stay_in_bounds():
    mask = torch.ones(2, 50, dtype=torch.bool)
    mild = 1.0 + 0.1 * torch.rand(2, 50)
    weights = balance_weights(mild, mask, 0.25, 4.0)
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-5)
    extreme = torch.ones(2, 50)
    extreme[0, 0] = 1e6  # one sample would dominate
    extreme[1, 0] = 0.0
    weights = balance_weights(extreme, mask, 0.25, 4.0)
    assert weights.max().item() == pytest.approx(4.0) and weights.min().item() == 0.25
    # weights are 0 outside the mask and the mean is taken over the mask only
    half = torch.zeros(1, 4, dtype=torch.bool)
    half[0, :2] = True
    weights = balance_weights(torch.tensor([[1.0, 3.0, 100.0, 100.0]]), half)
    assert weights.tolist() == [[0.5, 1.5, 0.0, 0.0]]
    assert balance_weights(torch.ones(1, 3), torch.zeros(1, 3, dtype=torch.bool)).sum() == 0
    assert balance_weights(torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.bool)).tolist() == \
        [[1.0, 1.0, 1.0]]


def test_hard_sample_scores_balanced_keep_order_and_image_statistics():
    reliability = torch.tensor([[0.9, 0.9, 0.9], [0.2, 0.2, 0.2]])  # image 1: teacher-hard
    discrepancy = torch.tensor([[0.1, 0.5, 0.9], [0.5, 0.5, 0.5]])
    mask = torch.ones(2, 3, dtype=torch.bool)
    weights = balance_weights(hard_sample_scores(reliability, discrepancy), mask, w_min=0.1,
                              w_max=10.0)
    assert weights[0, 0] < weights[0, 1] < weights[0, 2]
    assert weights[1].mean() < weights[0].mean()  # a teacher-hard image weighs less
    stats = weight_statistics(weights, mask)
    assert stats['mean'].item() == pytest.approx(1.0, abs=1e-5)
    assert stats['img_min'].item() == pytest.approx(weights[1].mean().item())
    assert stats['img_max'].item() == pytest.approx(weights[0].mean().item())
    assert stats['min'] <= stats['img_min'] <= stats['img_max'] <= stats['max']
    empty = weight_statistics(weights, torch.zeros_like(mask))
    assert all(v.item() == 0 for v in empty.values())


def test_geometric_weights_on_known_scores_and_bound_fractions():
    scores = torch.tensor([[1.0, 4.0, 16.0]])  # geometric mean 4
    mask = torch.ones_like(scores, dtype=torch.bool)
    wide = geometric_balance_weights(scores, mask, power=1.0, w_min=0.1, w_max=10.0)
    assert wide.tolist() == [pytest.approx([0.25, 1.0, 4.0], rel=1e-5)]
    compressed = geometric_balance_weights(scores, mask, power=0.5, w_min=0.1, w_max=10.0)
    assert compressed.tolist() == [pytest.approx([0.5, 1.0, 2.0], rel=1e-5)]
    # at power 1 with bounds [0.25, 4] the extremes sit on the bounds: 1/3 at each
    bounded = geometric_balance_weights(scores, mask, power=1.0, w_min=0.25, w_max=4.0)
    stats = weight_statistics(bounded, mask, bounds=(0.25, 4.0))
    assert stats['at_min'].item() == pytest.approx(1 / 3)
    assert stats['at_max'].item() == pytest.approx(1 / 3)
    stats = weight_statistics(compressed, mask, bounds=(0.25, 4.0))
    assert stats['at_min'].item() == 0 and stats['at_max'].item() == 0
    assert 'at_min' not in weight_statistics(compressed, mask)
    # the mean is over the mask only, weights are 0 outside it
    half = torch.tensor([[True, True, False]])
    assert geometric_balance_weights(torch.tensor([[1.0, 4.0, 1e6]]), half, 1.0).tolist() == \
        [pytest.approx([0.5, 2.0, 0.0], rel=1e-5)]
    # eps-safe: a zero score gets the lower bound, not nan; all zeros give ones
    zero = geometric_balance_weights(torch.tensor([[0.0, 1.0, 1.0]]), mask)
    assert torch.isfinite(zero).all() and zero[0, 0].item() == 0.25
    assert geometric_balance_weights(torch.zeros(1, 3), mask).tolist() == [[1.0, 1.0, 1.0]]
    assert geometric_balance_weights(scores, torch.zeros_like(mask)).sum() == 0
    with pytest.raises(ValueError, match='power'):
        geometric_balance_weights(scores, mask, power=0.0)


# ---- box decoding -------------------------------------------------------------------------------
def test_decoded_boxes_of_delta_distance_and_distribution_heads():
    retina, _ = _head_outputs('retinanet')
    assert box_prediction_kind(retina) == 'delta'
    zeros = [torch.zeros(1, retina.num_base_priors * 4, 8, 12)]
    boxes = decode_dense_boxes(retina, zeros)[0]  # zero deltas give the anchors back
    anchors = retina.prior_generator.single_level_grid_priors((8, 12), 0, device='cpu')
    assert boxes.shape == (1, retina.num_base_priors, 4, 8, 12)
    assert torch.allclose(boxes.permute(0, 3, 4, 1, 2).reshape(-1, 4), anchors, atol=1e-4)

    fcos, _ = _head_outputs('fcos')
    assert box_prediction_kind(fcos) == 'distance'
    distances = torch.full((1, 4, 8, 12), 2.0)
    # without norm_on_bbox, FCOS predicts pixels in both modes
    assert decode_dense_boxes(fcos, [distances])[0][0, 0, :, 0, 0].tolist() == pytest.approx(
        [2.0, 2.0, 6.0, 6.0])
    fcos.norm_on_bbox = True  # then training-mode distances are in stride units
    fcos.train()
    train_boxes = decode_dense_boxes(fcos, [distances])[0]
    fcos.eval()
    eval_boxes = decode_dense_boxes(fcos, [distances * 8])[0]
    assert torch.allclose(train_boxes, eval_boxes)
    # point (4, 4) of stride 8 (FCOS points sit at cell centres), 16 px each way
    assert train_boxes[0, 0, :, 0, 0].tolist() == pytest.approx([-12.0, -12.0, 20.0, 20.0])

    gfl, _ = _head_outputs('gfl')
    assert box_prediction_kind(gfl) == 'distribution'
    bins = gfl.reg_max + 1
    logits = torch.full((1, 4, bins, 8, 12), -1e4)
    logits[:, :, 3] = 0.0  # all mass on bin 3: distance 3 strides
    boxes = decode_dense_boxes(gfl, [logits.view(1, 4 * bins, 8, 12)])[0]
    centre = gfl.anchor_center(
        gfl.prior_generator.single_level_grid_priors((8, 12), 0, device='cpu'))[0]
    expected = torch.cat([centre - 24.0, centre + 24.0])
    assert torch.allclose(boxes[0, 0, :, 0, 0], expected, atol=1e-3)


# ---- the distiller in DetectionDistill ----------------------------------------------------------
def _distill(losses):
    return {k: v for k, v in losses.items() if k.startswith('distill.')}


@pytest.mark.parametrize('kind', HEAD_KINDS)
def test_distills_every_dense_head_kind(kind):
    algorithm = build_distill(kind, kind, dict(CSL, region='topk'))
    losses = algorithm.loss(*fake_batch())
    distill = _distill(losses)
    for key in ('loss_soft_cls', 'loss_soft_box', 'loss_conf_feat', 'region_ratio',
                'region_confidence', 'hard_weight_mean', 'hard_weight_min', 'hard_weight_max',
                'hard_weight_img_min', 'hard_weight_img_max', 'hard_weight_at_min',
                'hard_weight_at_max', 'feat_level0'):
        assert torch.isfinite(distill[f'distill.{key}']), (kind, key)
    assert distill['distill.loss_soft_box'] > 0 and distill['distill.loss_conf_feat'] > 0
    assert 0.25 <= distill['distill.hard_weight_min'] <= distill['distill.hard_weight_max'] <= 4
    expected_box = 'distribution_kl' if kind == 'gfl' else 'giou'
    assert algorithm.distiller._box_mode() == expected_box


def test_two_stage_rpn_objectness_and_softmax_heads():
    algorithm = build_distill('faster_rcnn', 'faster_rcnn', dict(CSL, region='topk'))
    assert algorithm.distiller.head_spec == (1, True, 'rpn_head')
    distill = _distill(algorithm.loss(*fake_batch()))
    assert torch.isfinite(distill['distill.loss_soft_cls'])
    assert torch.isfinite(distill['distill.loss_soft_box'])

    from mmrazor.registry import MODELS
    softmax = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    student, teacher = tiny_detector_cfg('retinanet'), tiny_detector_cfg('retinanet', 64)
    student.bbox_head.loss_cls = teacher.bbox_head.loss_cls = softmax
    algorithm = MODELS.build(dict(type='DetectionDistill', architecture=student,
                                  teacher=teacher, distiller=dict(CSL, region='topk')))
    assert algorithm.distiller.head_spec == (NUM_CLASSES + 1, False, 'bbox_head')
    distill = _distill(algorithm.loss(*fake_batch()))
    assert torch.isfinite(distill['distill.loss_soft_cls']) and \
        distill['distill.loss_soft_cls'] > 0


def test_gradients_reach_the_student_and_connectors_never_the_teacher():
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL, region='topk'),
                              student_neck=16, teacher_neck=32)
    losses = _distill(algorithm.loss(*fake_batch()))
    total = sum(v for k, v in losses.items() if 'loss' in k)  # distillation terms only
    total.backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    assert algorithm.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert algorithm.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert algorithm.student.bbox_head.retina_reg.weight.grad.abs().sum() > 0
    assert algorithm.distiller.feature_connectors[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize('sharpening', [0.0, 0.5])
def test_a_teacher_identical_to_the_student_teaches_no_soft_labels_or_boxes(sharpening):
    algorithm = build_distill('fcos', 'fcos', dict(CSL, region='topk',
                                                   label_sharpening=sharpening), teacher_neck=32)
    algorithm.teacher.load_state_dict(algorithm.student.state_dict())
    algorithm.eval()
    distill = _distill(algorithm.loss(*fake_batch()))
    if sharpening == 0:
        assert distill['distill.loss_soft_cls'].item() == pytest.approx(0.0, abs=1e-6)
    else:  # the confident anchors' targets are sharper than the teacher's own probabilities
        assert distill['distill.loss_soft_cls'].item() > 1e-4
    assert distill['distill.loss_soft_box'].item() == pytest.approx(0.0, abs=1e-5)
    assert distill['distill.loss_conf_feat'].item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize('feat_loss', ['conf_spatial_kl', 'standardized_region'])
def test_empty_regions_give_zero_region_terms_and_finite_soft_labels(feat_loss):
    algorithm = build_distill('retinanet', 'retinanet',
                              dict(CSL, region_thr=1.0, feat_loss=feat_loss))
    distill = _distill(algorithm.loss(*fake_batch()))
    assert distill['distill.region_ratio'].item() == 0.0
    assert distill['distill.loss_soft_box'].item() == 0.0
    assert torch.isfinite(distill['distill.loss_soft_cls'])
    if feat_loss == 'standardized_region':
        assert distill['distill.loss_conf_feat'].item() == 0.0
    else:  # the whole map is distilled, regions or not
        assert distill['distill.loss_conf_feat'].item() > 0


# v1's losses, computed by the v1 code (before region_unit etc. existed) on these seeds
V1_LOSSES = [
    ('retinanet', dict(region='topk'), (73.34574890136719, 1.806749939918518, 0.7998698949813843)),
    ('retinanet', dict(region_thr=0.65),
     (5.355447292327881, 1.749243974685669, 0.9821658730506897)),
    ('fcos', dict(region='topk'), (3.4750821590423584, 0.5964089632034302, 1.3430778980255127)),
    ('gfl', dict(region_thr=0.55), (0.10068891942501068, 0.5258113741874695, 0.9285117983818054)),
]


@pytest.mark.parametrize('kind,options,expected', V1_LOSSES)
def test_v1_options_reproduce_the_v1_losses(kind, options, expected):
    torch.manual_seed(0)
    algorithm = build_distill(kind, kind, dict(CSL, loss_feat_weight=1.0, **V1, **options))
    distill = _distill(algorithm.loss(*fake_batch()))
    for key, value in zip(('loss_soft_cls', 'loss_soft_box', 'loss_conf_feat'), expected):
        assert distill[f'distill.{key}'].item() == pytest.approx(value, rel=1e-5), key
    # the feature levels' shares add up to the term
    shares = sum(v for k, v in distill.items() if k.startswith('distill.feat_level'))
    assert shares.item() == pytest.approx(expected[2], rel=1e-5)


def test_anchor_regions_count_anchors_and_feature_levels_sum_to_the_term():
    torch.manual_seed(0)
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL, region_thr=0.65))
    distill = _distill(algorithm.loss(*fake_batch()))
    maps = algorithm.distiller._analyse()
    confident = torch.cat([c.flatten() >= 0.65 for c in maps['confidence']])
    assert distill['distill.region_ratio'].item() == pytest.approx(confident.float().mean())
    assert int(maps['region_mask'].sum()) == int(confident.sum())
    shares = [v for k, v in distill.items() if k.startswith('distill.feat_level')]
    assert len(shares) == 5
    assert sum(shares).item() == pytest.approx(distill['distill.loss_conf_feat'].item(),
                                               rel=1e-5)
    assert 0 <= distill['distill.hard_weight_at_max'] <= 1
    # the feature weight defaults to CWD's 10 for the spatial KL and to v1's 1, and can be set
    assert algorithm.distiller.loss_feat_weight == 10.0
    from mmrazor.registry import MODELS
    assert MODELS.build(dict(CSL, feat_loss='standardized_region')).loss_feat_weight == 1.0
    assert MODELS.build(dict(CSL, loss_feat_weight=3.0)).loss_feat_weight == 3.0


@pytest.mark.parametrize('options,message', [
    (dict(region='everywhere'), "region must be one of .'threshold', 'topk'."),
    (dict(region_unit='pixel'), "region_unit must be one of .'anchor', 'cell'."),
    (dict(feat_loss='mse'), "feat_loss must be one of .'conf_spatial_kl', 'standardized_region'."),
    (dict(weight_norm='max'), "weight_norm must be one of .'geometric', 'mean_clamp'."),
    (dict(label_sharpening=1.0), r'label_sharpening must be in \[0, 1\)'),
    (dict(label_sharpening=-0.1), r'label_sharpening must be in \[0, 1\)'),
    (dict(weight_power=0.0), 'weight_power must be positive'),
    (dict(feat_temperature=0.0), 'feat_temperature must be positive'),
])
def test_bad_options_name_the_key(options, message):
    from mmrazor.registry import MODELS
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(CSL, **options))


def test_box_loss_none():
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL, box_loss='none'))
    assert 'distill.loss_soft_box' not in algorithm.loss(*fake_batch())


# ---- semi-supervised batches --------------------------------------------------------------------
def _semi(distiller=CSL, **kwargs):
    from mmrazor.registry import MODELS
    algorithm = MODELS.build(dict(
        type='SemiSupervisedDetectionDistill', architecture=tiny_detector_cfg('retinanet'),
        teacher=tiny_detector_cfg('retinanet', 64), distiller=distiller, **kwargs))
    algorithm.init_weights()
    return algorithm


def _total(loss):
    """A loss entry as a scalar (RetinaNet returns one tensor per level)."""
    return sum(loss) if isinstance(loss, (list, tuple)) else loss


def _mark_unlabeled(samples, rows):
    from mmengine.structures import InstanceData
    for row in rows:
        samples[row].set_metainfo(dict(labeled=False))
        samples[row].gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                                 labels=torch.zeros(0, dtype=torch.long))
    return samples


def test_unlabeled_images_get_distill_loss_and_no_task_loss():
    algorithm = _semi(dict(CSL, region='topk'))
    algorithm.eval()  # BatchNorm on running statistics: images do not influence each other
    inputs, samples = fake_batch(batch_size=3)
    samples = _mark_unlabeled(samples, [1, 2])
    inputs = inputs.clone().requires_grad_(True)
    losses = algorithm.loss(inputs, samples)
    assert losses['labeled_images'].item() == 1.0
    assert torch.isfinite(losses['distill.loss_soft_cls'])
    task = sum(_total(v) for k, v in losses.items() if k.startswith('student.'))
    grad, = torch.autograd.grad(task, inputs, retain_graph=True)
    assert grad[0].abs().sum() > 0
    assert grad[1:].abs().sum() == 0  # the task loss does not see unlabeled images
    distill = losses['distill.loss_soft_cls'] + losses['distill.loss_conf_feat']
    grad, = torch.autograd.grad(distill, inputs)
    assert grad[1:].abs().sum() > 0  # ... the distillation losses do

    # the task loss equals the one of the labeled image alone
    alone_inputs, alone_samples = fake_batch(batch_size=1)
    alone = algorithm.loss(alone_inputs, alone_samples)
    for key in ('student.loss_cls', 'student.loss_bbox'):
        assert torch.allclose(_total(losses[key]), _total(alone[key]), atol=1e-5), key


def test_all_unlabeled_batch_trains_from_distillation_only_and_teacher_gets_no_grad():
    algorithm = _semi(dict(CSL, region='topk'))
    algorithm.train()
    inputs, samples = fake_batch(batch_size=2)
    losses = algorithm.loss(inputs, _mark_unlabeled(samples, [0, 1]))
    assert losses['student.loss_task_no_labeled'].item() == 0.0
    assert losses['labeled_images'].item() == 0.0
    total, _ = algorithm.parse_losses(losses)
    total.backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    assert algorithm.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert not algorithm.teacher.training  # the frozen teacher predicts as at test time


@pytest.mark.parametrize('feat_loss', ['conf_spatial_kl', 'standardized_region'])
def test_image_weights_scale_each_images_share_of_every_term(feat_loss):
    """Each term is linear in the per-image factors: L(w) = sum_i w_i L_i, and ones (or None)
    give the unweighted losses exactly."""
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL, region='topk',
                                                             feat_loss=feat_loss))
    algorithm.loss(*fake_batch(batch_size=2))
    distiller = algorithm.distiller
    terms = ('loss_soft_cls', 'loss_soft_box', 'loss_conf_feat')

    def losses(weights):
        out = distiller.compute_distill_losses(
            image_weights=None if weights is None else torch.tensor(weights))
        return [out[key].detach() for key in terms]

    plain, ones = losses(None), losses([1.0, 1.0])
    first, second, mixed = losses([1.0, 0.0]), losses([0.0, 1.0]), losses([2.0, 0.5])
    for key, p, o, a, b, m in zip(terms, plain, ones, first, second, mixed):
        assert torch.equal(p, o), key
        assert a > 0 and b > 0, key
        assert torch.allclose(a + b, p, rtol=1e-5), key
        assert torch.allclose(2.0 * a + 0.5 * b, m, rtol=1e-5), key
    with pytest.raises(ValueError, match=r'image_weights must have shape \(2,\)'):
        distiller.compute_distill_losses(image_weights=torch.ones(3))


def _distill_total(losses):
    return sum(v for k, v in losses.items() if k.startswith('distill.loss'))


def test_unlabeled_weight_scales_only_the_unlabeled_images_distillation():
    inputs, samples = fake_batch(batch_size=2)
    samples = _mark_unlabeled(samples, [1])
    algorithm = _semi(dict(CSL, region='topk'), unlabeled_weight=0.0)
    algorithm.eval()  # BatchNorm on running statistics: images do not influence each other
    totals = {}
    for weight in (0.0, 1.0, 3.0):
        algorithm.unlabeled_weight = weight
        image = inputs.clone().requires_grad_(True)
        losses = algorithm.loss(image, samples)
        totals[weight] = _distill_total(losses).detach()
        if weight != 1.0:  # the default logs nothing new
            assert losses['distill.unlabeled_weight'].item() == weight
        else:
            assert 'distill.unlabeled_weight' not in losses
        grad, = torch.autograd.grad(_distill_total(losses), image)
        assert grad[0].abs().sum() > 0  # the labeled image always teaches
        assert (grad[1].abs().sum() > 0) == (weight > 0)
    labeled_part, unlabeled_part = totals[0.0], totals[1.0] - totals[0.0]
    assert unlabeled_part > 0
    assert torch.allclose(totals[3.0], labeled_part + 3.0 * unlabeled_part, rtol=1e-4)


def test_unlabeled_weight_ramps_up_with_the_runners_iteration():
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    algorithm = _semi(dict(CSL, region='topk'), unlabeled_weight=2.0,
                      unlabeled_rampup_iters=100)
    inputs, _ = fake_batch(batch_size=2)
    logged = []
    for iteration in (0, 50, 100, 400):
        hub.update_info('iter', iteration)
        losses = algorithm.loss(inputs, _mark_unlabeled(fake_batch(batch_size=2)[1], [1]))
        logged.append(losses['distill.unlabeled_weight'].item())
    hub.update_info('iter', 0)
    expected = [2.0 * math.exp(-5.0), 2.0 * math.exp(-1.25), 2.0, 2.0]
    assert logged == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('options, error, message', [
    (dict(unlabeled_weight=-1.0), 'DistillConfigError',
     'model.unlabeled_weight must be >= 0'),
    (dict(unlabeled_weight='2'), 'DistillConfigError',
     'write model.unlabeled_weight=2 without quotes'),
    (dict(unlabeled_rampup_iters=1.5), 'DistillConfigError',
     'model.unlabeled_rampup_iters must be an int >= 0'),
    (dict(unlabeled_weight=2.0, pseudo_label_thr=0.5), 'DistillConfigError',
     'every image is labeled \\(pseudo GT\\)'),
])
def test_bad_balance_options_name_the_key(options, error, message):
    with pytest.raises(Exception, match=message) as info:
        _semi(dict(type='ConfigurableDistiller') if 'pseudo_label_thr' in options else CSL,
              **options)
    assert type(info.value).__name__ == error


def test_the_balance_needs_a_distiller_with_per_image_losses():
    with pytest.raises(Exception, match="DecoupledCosineDistiller does not compute. Fix: use "
                       "model.distiller.type='ConfidenceSoftLabelDistiller'"):
        _semi(dict(type='DecoupledCosineDistiller'), unlabeled_weight=2.0)


def test_mixed_batches_need_a_one_stage_student():
    from mmrazor.registry import MODELS
    algorithm = MODELS.build(dict(
        type='SemiSupervisedDetectionDistill', architecture=tiny_detector_cfg('faster_rcnn'),
        teacher=tiny_detector_cfg('faster_rcnn', 64), distiller=CSL))
    inputs, samples = fake_batch(batch_size=2)
    with pytest.raises(TypeError, match='one-stage student'):
        algorithm.loss(inputs, _mark_unlabeled(samples, [1]))


def test_pseudo_labels_replace_missing_gt_with_confident_teacher_detections():
    algorithm = _semi(dict(type='ConfigurableDistiller'), pseudo_label_thr=0.0)
    algorithm.teacher.bbox_head.test_cfg.score_thr = 0.0  # an untrained teacher scores ~0.01
    algorithm.train()
    inputs, samples = fake_batch(batch_size=2)
    samples = _mark_unlabeled(samples, [1])
    labeled_gt = samples[0].gt_instances.bboxes.clone()
    losses = algorithm.loss(inputs, samples)
    assert losses['labeled_images'].item() == 2.0
    assert losses['pseudo_boxes_per_image'].item() == len(samples[1].gt_instances) > 0
    assert torch.equal(samples[0].gt_instances.bboxes, labeled_gt)  # real GT untouched
    assert torch.isfinite(_total(losses['student.loss_cls']))
    strict = _semi(dict(type='ConfigurableDistiller'), pseudo_label_thr=1.0)
    inputs, samples = fake_batch(batch_size=2)
    losses = strict.loss(inputs, _mark_unlabeled(samples, [1]))
    assert losses['pseudo_boxes_per_image'].item() == 0.0
    assert len(samples[1].gt_instances) == 0


def test_the_dry_run_error_names_the_real_exception_and_where_it_came_from(monkeypatch):
    """A failure inside the distiller is reported as itself, not as a guess about the config."""
    from kd_det.preflight import DistillShapeError, check_distill_shapes
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL))
    distiller = algorithm.distiller

    def _analyse():
        return ()[1]  # what a head without a quality output gave: tuple index out of range

    monkeypatch.setattr(distiller, '_analyse', _analyse)
    with pytest.raises(DistillShapeError) as info:
        check_distill_shapes(algorithm)
    message = str(info.value)
    assert 'ConfidenceSoftLabelDistiller cannot compute its losses on a dummy batch: ' \
           'IndexError: tuple index out of range (raised in test_confidence_soft_label.py:' \
           in message and 'in _analyse;' in message
    assert 'same number of levels' not in message


def test_the_dry_run_batch_follows_the_model_device(monkeypatch):
    """On a GPU the dummy batch must be on the GPU; simulated with a 'meta' parameter."""
    from kd_det.preflight import check_distill_shapes
    algorithm = build_distill('retinanet', 'retinanet', dict(CSL))
    on_meta = torch.nn.Parameter(torch.empty(1, device='meta'))
    monkeypatch.setattr(algorithm, 'parameters', lambda *args, **kwargs: iter([on_meta]))
    seen = {}

    def loss(inputs, samples):
        seen['inputs'] = inputs.device
        seen['boxes'] = samples[0].gt_instances.bboxes.device
        return {}

    monkeypatch.setattr(algorithm, 'loss', loss)
    check_distill_shapes(algorithm)
    assert seen == dict(inputs=torch.device('meta'), boxes=torch.device('meta'))
