"""The labeled/unlabeled balance of semi-supervised distillation: the ramp and the per-image
factors (the distiller and the algorithm that use them are tested in
test_confidence_soft_label.py)."""
import math

import pytest
import torch

from kd_det.models.utils.unlabeled_balance import image_loss_weights, sigmoid_rampup


def test_sigmoid_rampup_known_values():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == 1.0
    assert sigmoid_rampup(5000, 100) == 1.0  # stays at 1 after the ramp
    assert sigmoid_rampup(0, 0) == 1.0  # no ramp
    values = [sigmoid_rampup(i, 100) for i in range(0, 101, 10)]
    assert values == sorted(values)


def test_sigmoid_rampup_refuses_negative_iterations():
    with pytest.raises(ValueError, match='must be >= 0'):
        sigmoid_rampup(-1, 100)
    with pytest.raises(ValueError, match='must be >= 0'):
        sigmoid_rampup(1, -100)


def test_image_loss_weights_give_labeled_images_one():
    weights = image_loss_weights([True, False, False, True], 0.25)
    assert torch.equal(weights, torch.tensor([1.0, 0.25, 0.25, 1.0]))
