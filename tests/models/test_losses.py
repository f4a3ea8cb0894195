"""Distillation loss math on hand-made tensors with known answers."""
import math

import pytest
import torch

from kd_det.models.losses.cosine_distance import cosine_distance_map
from kd_det.models.losses.prediction_kl import prediction_kl, sigmoid_kl, softmax_kl


def test_cosine_distance_aligned_is_zero_opposite_is_two_orthogonal_is_one():
    teacher = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand(1, 3, 1, 3).clone()
    student = teacher.clone()
    student[..., 0] *= 5.0  # same direction, other length: still 0
    student[..., 1] *= -1.0  # opposite: 2
    student[0, :, 0, 2] = torch.tensor([3.0, 0.0, -1.0])  # orthogonal to (1, 2, 3): 1
    distance = cosine_distance_map(student, teacher)
    assert distance.shape == (1, 1, 3)
    assert torch.allclose(distance[0, 0], torch.tensor([0.0, 2.0, 1.0]), atol=1e-6)


def test_small_kl_can_hide_a_large_direction_change():
    # Why cosine on features: two vectors whose softmaxes nearly agree can point far apart.
    teacher = torch.tensor([0.02, -0.01, 0.0, 0.01])
    student = -teacher  # exactly opposite direction
    kl = softmax_kl(student[None], teacher[None])
    cos = cosine_distance_map(student.view(1, 4, 1, 1), teacher.view(1, 4, 1, 1))
    assert kl.item() < 1e-3
    assert cos.item() == pytest.approx(2.0, abs=1e-6)


def test_cosine_distance_rejects_unaligned_shapes():
    with pytest.raises(ValueError, match='align them'):
        cosine_distance_map(torch.zeros(1, 4, 2, 2), torch.zeros(1, 8, 2, 2))


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_kl_of_equal_predictions_is_zero(use_sigmoid):
    logits = torch.randn(5, 7) * 3
    assert torch.allclose(prediction_kl(logits, logits, use_sigmoid), torch.zeros(5), atol=1e-6)


def test_sigmoid_kl_matches_bernoulli_formula():
    s, t = torch.tensor([[0.0]]), torch.tensor([[math.log(3.0)]])  # p_s = 0.5, p_t = 0.75
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert sigmoid_kl(s, t).item() == pytest.approx(expected, rel=1e-5)
    # classes are independent Bernoullis: two identical classes give twice the KL
    assert sigmoid_kl(s.repeat(1, 2), t.repeat(1, 2)).item() == pytest.approx(2 * expected,
                                                                              rel=1e-5)


def test_softmax_kl_matches_formula_and_temperature_scaling():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3.0)]])
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert softmax_kl(s, t).item() == pytest.approx(expected, rel=1e-5)
    # at T=2 logits are halved and the KL is multiplied by T^2 = 4
    pt = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    expected_t2 = 4 * float((pt * (pt / 0.5).log()).sum())
    assert softmax_kl(s, t, temperature=2.0).item() == pytest.approx(expected_t2, rel=1e-5)


def test_kl_stays_finite_for_extreme_logits():
    s = torch.tensor([[-200.0, 200.0]], requires_grad=True)
    t = torch.tensor([[200.0, -200.0]])
    for use_sigmoid in (True, False):
        kl = prediction_kl(s, t, use_sigmoid)
        kl.sum().backward()
        assert torch.isfinite(kl).all() and torch.isfinite(s.grad).all()


# ---- channel-wise spatial distribution KL -------------------------------------------------------
def test_channel_spatial_kl_known_value_and_zero_for_equal_maps():
    from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
    # one channel, two cells: teacher logits (0, ln 3) -> (1/4, 3/4); student (0, 0) -> (1/2, 1/2)
    teacher = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    student = torch.zeros(1, 1, 1, 2)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl = channel_spatial_kl(student, teacher)
    assert kl.shape == (1, 1)
    assert kl.item() == pytest.approx(expected, rel=1e-5)
    # temperature 2: logits halved, result times 4
    t2 = channel_spatial_kl(student, teacher, temperature=2.0)
    pt = torch.softmax(teacher.flatten() / 2, dim=0)
    assert t2.item() == pytest.approx(4 * float((pt * (pt / 0.5).log()).sum()), rel=1e-5)
    maps = torch.randn(2, 3, 4, 5)
    assert torch.allclose(channel_spatial_kl(maps, maps), torch.zeros(2, 3), atol=1e-6)


def test_channel_spatial_kl_mask_ignores_cells_outside_and_empty_images_give_zero():
    from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
    teacher = torch.tensor([0.0, math.log(3.0), 5.0]).view(1, 1, 1, 3).repeat(2, 1, 1, 1)
    student = torch.tensor([0.0, 0.0, -7.0]).view(1, 1, 1, 3).repeat(2, 1, 1, 1)
    mask = torch.tensor([[[True, True, False]], [[False, False, False]]])
    kl = channel_spatial_kl(student, teacher, mask=mask)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl[0, 0].item() == pytest.approx(expected, rel=1e-5)  # the third cell plays no part
    assert kl[1, 0].item() == 0.0


def test_channel_spatial_kl_same_bias_on_both_sides_keeps_the_optimum_but_reweights():
    from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
    teacher = torch.randn(1, 4, 3, 3)
    bias = torch.rand(1, 3, 3) * 2
    assert torch.allclose(channel_spatial_kl(teacher, teacher, bias=bias), torch.zeros(1, 4),
                          atol=1e-6)
    student = teacher + torch.randn(1, 4, 3, 3)
    assert not torch.allclose(channel_spatial_kl(student, teacher, bias=bias),
                              channel_spatial_kl(student, teacher))


def test_channel_spatial_kl_gradient_reaches_the_student_and_bad_shapes_fail():
    from kd_det.models.losses.spatial_distribution_kl import channel_spatial_kl
    student = torch.randn(1, 2, 3, 3, requires_grad=True)
    teacher = torch.randn(1, 2, 3, 3, requires_grad=True)
    channel_spatial_kl(student, teacher.detach()).sum().backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
    with pytest.raises(ValueError, match='align them'):
        channel_spatial_kl(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 3))
    with pytest.raises(ValueError, match=r'mask must be \(N, H, W\)'):
        channel_spatial_kl(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3),
                           mask=torch.ones(3, 3, dtype=torch.bool))
