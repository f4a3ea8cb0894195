"""The real-time pair's configs (every one inheriting mmdet::rtmdet/...): a short distillation
run with mmdet's EMA hook, and its student extracted for stock mmdet."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT, train_tiny_distillation
from kd_det.apis.student import extract_student

TEACHER = osp.join(REPO_ROOT, 'configs/embedded/rtmdet_s_16e_embedded_teacher.py')
DCD = osp.join(REPO_ROOT, 'configs/rtmdet/dcd_rtmdet_tiny_embedded.py')


@pytest.fixture(scope='module')
def rtmdet_distill_run(tiny_dataset, tmp_path_factory):
    """One epoch of DecoupledCosine on the RTMDet pair from a (random-weight) teacher."""
    work = tmp_path_factory.mktemp('rtmdet')
    train_tiny_distillation(DCD, TEACHER, tiny_dataset, str(work))
    return work


def test_the_rtmdet_pair_distils_with_every_term_and_mmdets_ema(rtmdet_distill_run):
    work = rtmdet_distill_run
    scalars = [osp.join(r, f) for r, _, fs in os.walk(work) for f in fs if f == 'scalars.json']
    with open(scalars[0]) as f:
        entries = [json.loads(line) for line in f if 'distill.loss_fg_cos' in line]
    assert entries
    for key in ('distill.loss_fg_cos', 'distill.loss_bg_feat', 'distill.loss_bg_kl',
                'student.loss_cls', 'student.loss_bbox'):
        values = [entry[key] for entry in entries]
        assert all(np.isfinite(values)), key
    # issue #17: the logit term was logged as 0.0000 on RTMDet before heads were read from the head
    assert all(entry['distill.loss_bg_kl'] > 0 for entry in entries)
    checkpoint = torch.load(str(work / 'epoch_1.pth'), map_location='cpu', weights_only=True)
    assert 'ema_state_dict' in checkpoint  # mmdet's RTMDet EMA hook ran on the algorithm


def test_the_distilled_rtmdet_student_is_a_plain_mmdet_rtmdet(rtmdet_distill_run):
    work = rtmdet_distill_run
    cfg_path, ckpt_path = extract_student(DCD, str(work / 'epoch_1.pth'), str(work / 'student'))
    cfg = Config.fromfile(cfg_path)
    assert cfg.model.type == 'RTMDet' and cfg.model.bbox_head.type == 'RTMDetSepBNHead'
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    state = torch.load(ckpt_path, weights_only=True)['state_dict']
    model.load_state_dict(state, strict=True)  # every key of stock RTMDet-tiny, nothing else
