"""Student extraction for stock mmdet tools, and mixed precision."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import (DCD_CONFIG, STUDENT_CONFIG, TEACHER_CONFIG, tiny_run_options,
                      train_tiny_distillation)
from kd_det.apis.student import extract_student, student_config, student_state_dict


@pytest.fixture(scope='module')
def distill_run(tiny_dataset, tmp_path_factory):
    """A 1-epoch distillation run from a (random-weight) saved teacher checkpoint."""
    work = tmp_path_factory.mktemp('distill')
    options = train_tiny_distillation(DCD_CONFIG, TEACHER_CONFIG, tiny_dataset, str(work))
    return work, options


def test_distillation_logs_decoupled_terms_and_gate_ratios(distill_run):
    import json
    import os
    work, _ = distill_run
    scalars = [osp.join(r, f) for r, _, fs in os.walk(work) for f in fs if f == 'scalars.json']
    with open(scalars[0]) as f:
        entry = next(json.loads(line) for line in f if 'distill.loss_fg_cos' in line)
    for key in ('distill.loss_fg_cos', 'distill.loss_bg_feat', 'distill.loss_bg_kl',
                'distill.fg_gate_ratio', 'distill.l0_objects', 'student.loss_cls'):
        assert np.isfinite(entry[key]), key


def test_extracted_student_loads_in_stock_mmdet_tools(distill_run, tiny_dataset):
    work, options = distill_run
    cfg_path, ckpt_path = extract_student(DCD_CONFIG, str(work / 'epoch_1.pth'),
                                          str(work / 'student'))
    state = torch.load(ckpt_path, weights_only=True)['state_dict']
    assert not any(k.startswith(('architecture.', 'teacher.', 'distiller.')) for k in state)
    cfg = Config.fromfile(cfg_path)
    assert cfg.model.type == 'RetinaNet' and cfg.default_scope == 'mmdet'

    # mmdet's own inference API, with the plain config and checkpoint
    from mmdet.apis import DetInferencer
    image = osp.join(tiny_dataset, 'val', '000000.png')
    inferencer = DetInferencer(model=cfg_path, weights=ckpt_path, device='cpu',
                               show_progress=False)
    result = inferencer(image, return_datasamples=True)['predictions'][0]
    assert result.pred_instances.bboxes.shape[1] == 4

    # weights equal the student's weights inside the distillation checkpoint
    full = torch.load(str(work / 'epoch_1.pth'), weights_only=True)['state_dict']
    for key, value in student_state_dict(full).items():
        assert torch.equal(state[key], value)


def test_amp_flag_uses_bf16_autocast_on_cpu_and_losses_stay_finite(tiny_dataset, tmp_path):
    from kd_det.apis.runner import build_train_runner
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=4)
    options['train_cfg.val_interval'] = 100
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path), cfg_options=options,
                                amp=True)
    runner.train()
    assert type(runner.optim_wrapper).__name__ == 'BF16AutocastOptimWrapper'
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss)


def test_amp_refuses_to_replace_a_custom_optim_wrapper():
    from kd_det.engine.amp import enable_amp
    cfg = Config(dict(optim_wrapper=dict(type='MyWrapper')))
    with pytest.raises(ValueError, match="only replaces `OptimWrapper`"):
        enable_amp(cfg)


@pytest.mark.parametrize('deploy_type', ['mmrazor.GroupFisherDeploySubModel',
                                         'GroupFisherDeploySubModel'])
def test_student_config_keeps_a_deploy_sub_model_and_unwraps_a_distillation(deploy_type):
    architecture = dict(type='RetinaNet', backbone=dict(type='MobileNetV2'))
    deploy = Config(dict(model=dict(type=deploy_type, architecture=architecture,
                                    fix_subnet={'backbone.conv1': 8}),
                         default_scope='mmdet'))
    assert student_config(deploy).model.to_dict() == deploy.model.to_dict()
    distill = Config(dict(model=dict(type='DetectionDistill', architecture=architecture,
                                     teacher=dict(type='RetinaNet')), default_scope='mmrazor'))
    plain = student_config(distill)
    assert plain.model.to_dict() == architecture and plain.default_scope == 'mmdet'
