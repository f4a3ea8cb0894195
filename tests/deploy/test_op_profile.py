"""The eager op profile: per-part latencies and the ops that cost them."""
import os.path as osp

import pytest

from conftest import REPO_ROOT
from kd_det.apis.student import build_student
from kd_det.deploy.op_profile import profile_markdown, profile_models

STUDENT = osp.join(REPO_ROOT, 'configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')


def test_profile_lists_each_part_and_its_convolutions():
    model = build_student(STUDENT)
    results = profile_models(dict(student=model), (3, 64, 96), parts=('neck', 'all'),
                             repeats=5, top=5)
    parts = results['student']
    assert set(parts) == {'neck', 'all'}
    assert 0 < parts['neck']['latency_ms'] < parts['all']['latency_ms']
    ops = parts['all']['ops']
    assert len(ops) == 5 and ops == sorted(ops, key=lambda o: -o['self_ms_per_run'])
    assert any('conv' in o['op'] for o in ops)
    # RetinaNet's FPN: 3 lateral + 3 output convs + 2 extra levels = 8 convolutions per run
    convs = [o for o in top_neck_ops(model) if o['op'] == 'aten::convolution']
    assert convs and convs[0]['calls_per_run'] == 8
    table = profile_markdown(results)
    assert table.startswith('| part | student |') and '**student, neck**' in table


def top_neck_ops(model):
    return profile_models(dict(m=model), (3, 64, 96), parts=('neck', ), repeats=5,
                          top=50)['m']['neck']['ops']


def test_unknown_part_is_refused():
    with pytest.raises(ValueError, match=r"unknown parts \['necks'\]"):
        profile_models({}, parts=('necks', ))
