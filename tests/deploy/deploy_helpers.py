"""Shared fixtures of the deployment tests (imported by the test modules that use them)."""
import pytest
import torch

from conftest import STUDENT_CONFIG


@pytest.fixture(scope='session')
def student_ckpt(tmp_path_factory):
    """The embedded student with random weights, saved as a plain checkpoint; the class bias
    is zeroed so scores spread around 0.5 instead of all sitting under the score threshold."""
    torch.manual_seed(0)
    from kd_det.apis.student import build_student
    model = build_student(STUDENT_CONFIG)
    model.init_weights()
    with torch.no_grad():
        model.bbox_head.retina_cls.bias.zero_()
        model.bbox_head.retina_cls.weight.mul_(30)
    path = str(tmp_path_factory.mktemp('student') / 'student.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path
