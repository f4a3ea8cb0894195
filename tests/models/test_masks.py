"""Foreground masks from GT boxes on feature grids, including non-square inputs."""
import torch

from kd_det.models.utils.masks import (batch_scale_aware_foreground, boxes_to_cell_masks,
                                       scale_aware_foreground)


def test_box_marks_the_cells_it_overlaps_at_each_stride():
    box = torch.tensor([[8.0, 0.0, 24.0, 8.0]])  # x 8..24, y 0..8
    mask4 = boxes_to_cell_masks(box, (4, 8), (4, 4))[0]
    expected4 = torch.zeros(4, 8, dtype=torch.bool)
    expected4[0:2, 2:6] = True
    assert torch.equal(mask4, expected4)
    mask8 = boxes_to_cell_masks(box, (2, 4), (8, 8))[0]
    expected8 = torch.zeros(2, 4, dtype=torch.bool)
    expected8[0, 1:3] = True
    assert torch.equal(mask8, expected8)


def test_non_square_grid_keeps_height_and_width_apart():
    # A tall box on a wide feature map: a swapped h/w would mark a wide band instead.
    box = torch.tensor([[0.0, 0.0, 8.0, 32.0]])  # 1 cell wide, 4 cells tall at stride 8
    mask = boxes_to_cell_masks(box, (4, 10), (8, 8))[0]
    assert mask.shape == (4, 10)
    assert mask[:, 0].all() and mask.sum() == 4


def test_box_smaller_than_a_cell_marks_one_cell():
    box = torch.tensor([[33.0, 17.0, 35.0, 19.0]])
    mask = boxes_to_cell_masks(box, (8, 8), (16, 16))[0]
    assert mask.sum() == 1 and mask[1, 2]


def test_scale_aware_weights_give_each_box_total_weight_one_and_small_box_wins():
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 16.0, 16.0]])
    labels = torch.tensor([3, 5])
    weight, label = scale_aware_foreground(boxes, labels, (8, 8), (4, 4))
    # big box: 8x8 = 64 cells of 1/64; small box: 2x2 = 4 cells of 1/4, overriding the big one
    assert torch.allclose(weight[2:4, 2:4], torch.full((2, 2), 0.25))
    assert torch.allclose(weight[0, 0], torch.tensor(1 / 64))
    assert (label[2:4, 2:4] == 5).all() and label[0, 0] == 3
    assert weight.sum().item() == (64 - 4) / 64 + 1.0


def test_image_without_boxes_is_all_background():
    weight, label = batch_scale_aware_foreground(
        [torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 4.0, 4.0]])],
        [torch.zeros(0, dtype=torch.long), torch.tensor([1])], (3, 5), (4, 4))
    assert weight.shape == (2, 3, 5) and label.shape == (2, 3, 5)
    assert weight[0].sum() == 0 and (label[0] == -1).all()
    assert weight[1, 0, 0] == 1.0 and label[1, 0, 0] == 1 and (label[1].flatten()[1:] == -1).all()


def test_object_ids_are_unique_across_the_batch():
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0], [8.0, 8.0, 12.0, 12.0]]), torch.zeros(0, 4),
             torch.tensor([[4.0, 0.0, 8.0, 4.0]])]
    labels = [torch.tensor([2, 2]), torch.zeros(0, dtype=torch.long), torch.tensor([2])]
    weight, label, index = batch_scale_aware_foreground(boxes, labels, (4, 4), (4, 4),
                                                        return_index=True)
    assert index[0, 0, 0] == 0 and index[0, 2, 2] == 1
    assert (index[1] == -1).all()
    assert index[2, 0, 1] == 2 and (index[2] >= 0).sum() == 1
    assert torch.equal(index >= 0, weight > 0)
