"""Eager inference with conv + BN folded and channels-last: same outputs, fewer ops."""
import os.path as osp

import pytest
import torch
from torch import nn

from conftest import REPO_ROOT
from kd_det.apis.student import build_student
from kd_det.deploy.eager_inference import optimize_for_eager_inference, to_channels_last
from kd_det.deploy.op_profile import profile_models

BIFPN_STUDENT = osp.join(REPO_ROOT,
                         'configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py')


def _student_with_trained_looking_bn():
    """The SparseBiFPN student with non-trivial BN statistics and affine parameters (at init
    they are 0/1, which a fold would pass with any bug)."""
    torch.manual_seed(0)
    model = build_student(BIFPN_STUDENT).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model


def test_folded_channels_last_model_predicts_what_the_model_predicts():
    model = _student_with_trained_looking_bn()
    optimized = optimize_for_eager_inference(model)
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        expected = model._forward(image)
        actual = optimized._forward(to_channels_last(image))
    for expected_part, actual_part in zip(expected, actual):
        for e, a in zip(expected_part, actual_part):
            assert torch.allclose(e, a, atol=1e-4, rtol=1e-4)
    # every BN is folded away, the original keeps its BNs, the weights are NHWC
    assert not any(isinstance(m, nn.BatchNorm2d) for m in optimized.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    kernel = next(p for p in optimized.parameters() if p.dim() == 4 and p.shape[-1] == 3 and
                  p.shape[1] == 3)  # the stem's 3x3 conv (a 1x1 kernel is both layouts)
    assert kernel.is_contiguous(memory_format=torch.channels_last) and not kernel.is_contiguous()


def test_the_profile_of_the_optimized_neck_has_no_batch_norm():
    optimized = optimize_for_eager_inference(_student_with_trained_looking_bn())
    ops = profile_models(dict(m=optimized), (3, 64, 96), parts=('neck', ), repeats=3,
                         top=50)['m']['neck']['ops']
    names = {o['op'] for o in ops}
    assert 'aten::convolution' in names
    assert not any('batch_norm' in name for name in names)


def test_channels_last_needs_a_batch():
    with pytest.raises(ValueError, match=r'channels-last needs a 4-d \(N, C, H, W\) batch, got '
                       r'shape \(3, 8, 8\)'):
        to_channels_last(torch.zeros(3, 8, 8))
