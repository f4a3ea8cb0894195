"""Object cells, centre prior, detection quality, level assignment and joint weights."""
import math

import pytest
import torch

from kd_det.models.utils.object_regions import (assigned_levels, cell_centers,
                                                center_prior_cells, joint_object_weights,
                                                object_quality, pad_objects)


def test_cell_centers_follow_the_heads_prior_offset():
    ys, xs = cell_centers((2, 3), (8.0, 16.0), center_offset=0.0)
    assert ys.tolist() == [0.0, 8.0] and xs.tolist() == [0.0, 16.0, 32.0]
    ys, xs = cell_centers((2, 3), (8.0, 16.0), center_offset=0.5)
    assert ys.tolist() == [4.0, 12.0] and xs.tolist() == [8.0, 24.0, 40.0]


def test_center_prior_cells_on_a_non_square_grid():
    # grid H=2, W=4, stride (sy, sx) = (10, 5), centres at y 5, 15 and x 2.5, 7.5, 12.5, 17.5
    box = torch.tensor([[5.0, 0.0, 15.0, 10.0]])  # x 5..15, y 0..10: cells (0, 1), (0, 2)
    inside, prior = center_prior_cells(box, (2, 4), (10.0, 5.0), center_offset=0.5)
    assert inside.shape == (1, 2, 4)
    assert inside[0].nonzero().tolist() == [[0, 1], [0, 2]]
    # box centre (10, 5); cell (0, 1) at (7.5, 5): dx = -2.5, sigma_x = 10 * 0.25 = 2.5
    assert prior[0, 0, 1].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert prior[0, 0, 2].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert prior[0, 1].sum().item() == 0.0


def test_a_box_smaller_than_a_cell_gets_the_nearest_cell():
    box = torch.tensor([[21.0, 21.0, 23.0, 23.0]])  # no cell centre (stride 8, offset 0.5) inside
    inside, prior = center_prior_cells(box, (4, 4), (8.0, 8.0), center_offset=0.5)
    assert inside[0].nonzero().tolist() == [[2, 2]]  # centre 22 -> cell centre 20
    assert prior[0, 2, 2] > 0


def test_center_prior_cells_keeps_leading_batch_dims():
    boxes = torch.tensor([[[5.0, 0.0, 15.0, 10.0], [21.0, 21.0, 23.0, 23.0]]])  # (1, 2, 4)
    inside, prior = center_prior_cells(boxes, (4, 4), (10.0, 5.0), center_offset=0.5)
    assert inside.shape == prior.shape == (1, 2, 4, 4)
    single, _ = center_prior_cells(boxes[0, :1], (4, 4), (10.0, 5.0), center_offset=0.5)
    assert torch.equal(inside[0, :1], single)


def test_pad_objects_pads_to_the_fullest_image_and_marks_padding():
    boxes, labels, valid = pad_objects([torch.ones(2, 4), torch.zeros(0, 4)],
                                       [torch.tensor([3, 1]), torch.zeros(0, dtype=torch.long)])
    assert boxes.shape == (2, 2, 4) and labels.tolist() == [[3, 1], [0, 0]]
    assert valid.tolist() == [[True, True], [False, False]]
    assert pad_objects([torch.zeros(0, 4)], [torch.zeros(0)])[0].shape == (1, 1, 4)


def test_object_quality_is_best_score_times_iou_inside_the_object():
    probs = torch.zeros(1, 2, 3, 1, 2)  # N=1, A=2 anchors, 3 classes, grid 1x2
    probs[0, 0, 1, 0, 0] = 0.8  # anchor 0 cell 0 says class 1 with 0.8
    probs[0, 1, 1, 0, 1] = 0.9  # anchor 1 cell 1 says 0.9, but cell 1 is outside the object
    inside = torch.tensor([[[[True, False]], [[False, False]]]])  # object 2 is padding
    labels = torch.tensor([[1, 0]])
    assert object_quality(probs, labels, inside)[0].tolist() == pytest.approx([0.8, 0.0])
    gt = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]]])
    pred = torch.zeros(1, 2, 4, 1, 2)
    pred[0, 0, :, 0, 0] = torch.tensor([0.0, 0.0, 10.0, 5.0])  # IoU 0.5 with the GT box
    assert object_quality(probs, labels, inside, gt, pred)[0].tolist() == pytest.approx([0.4, 0.0])


def test_assigned_level_is_the_teachers_best_and_weights_sum_to_one_per_object():
    quality = torch.tensor([[0.1, 0.7, 0.2], [0.0, 0.0, 0.0]])
    levels = assigned_levels(quality)
    assert levels.tolist() == [[False, True, False], [True, False, False]]  # ties: finest
    priors = [torch.ones(2, 2, 2), torch.full((2, 1, 2), 3.0), torch.ones(2, 1, 1)]
    weights = joint_object_weights(priors, levels)
    assert weights[1][0].tolist() == [[0.5, 0.5]] and weights[0][0].sum() == 0
    assert weights[0][1].tolist() == [[0.25, 0.25], [0.25, 0.25]]
    everywhere = joint_object_weights(priors, torch.ones(2, 3, dtype=torch.bool))
    total = sum(w.flatten(1).sum(dim=1) for w in everywhere)
    assert torch.allclose(total, torch.ones(2))
    assert everywhere[1][0, 0, 0].item() == pytest.approx(3 / 11)  # 4 + 6 + 1 = 11


def test_a_tiny_box_far_from_the_only_cell_centre_still_weighs_one():
    # 1x1 grid (stride 96): the cell centre (0, 0) is far from the small box
    box = torch.tensor([[50.0, 10.0, 90.0, 60.0]])
    inside, prior = center_prior_cells(box, (1, 1), (64.0, 96.0), center_offset=0.0)
    assert inside.all() and prior.item() == pytest.approx(math.exp(-20.0), rel=1e-4)
    weights = joint_object_weights([prior], torch.ones(1, 1, dtype=torch.bool))
    assert weights[0].sum().item() == pytest.approx(1.0, rel=1e-6)
