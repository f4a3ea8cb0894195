"""mmdet's SoftTeacher on our split (the anchor row of the semi-supervised benchmark): the config
builds, its mixed batches carry the labeled and both unlabeled branches, and training steps give
finite supervised and unsupervised losses."""
import math
import os.path as osp

import torch

from conftest import REPO_ROOT, semi_run_options
from kd_det.datasets.semi_supervised import is_labeled

SOFT_TEACHER = osp.join(REPO_ROOT, 'configs/confidence_soft_label/'
                        'soft_teacher_faster-rcnn_mnv2-fpn64_800it_embedded_semi10.py')


def _options(root, iters):
    options = semi_run_options(root, iters, warmup=1)
    options['default_hooks.logger.interval'] = 1
    return options


def test_mixed_batches_carry_labeled_and_both_unlabeled_branches(tiny_dataset):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from kd_det.apis.runner import load_config
    cfg = load_config(SOFT_TEACHER, work_dir='unused', cfg_options=_options(tiny_dataset, 2))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    samples = batch['data_samples']
    sup = [s for s in samples['sup'] if s is not None]
    weak = [s for s in samples['unsup_teacher'] if s is not None]
    strong = [s for s in samples['unsup_student'] if s is not None]
    assert len(sup) == len(weak) == len(strong) == 4  # source_ratio [1, 1] of 8
    assert all(is_labeled(s) for s in sup) and sum(len(s.gt_instances) for s in sup) > 0
    assert not any(is_labeled(s) or len(s.gt_instances) for s in weak + strong)
    assert {s.img_id for s in weak} == {s.img_id for s in strong}  # two views, same images
    for branch in ('sup', 'unsup_teacher', 'unsup_student'):
        shapes = {tuple(img.shape) for img in batch['inputs'][branch] if img is not None}
        assert shapes == {(3, 160, 160)}, branch


def test_soft_teacher_trains_both_parts_and_follows_the_student(tiny_dataset, tmp_path):
    from kd_det.apis.runner import build_train_runner
    runner = build_train_runner(SOFT_TEACHER, work_dir=str(tmp_path),
                                cfg_options=_options(tiny_dataset, iters=2))
    assert runner.model.student.backbone.__class__.__name__ == 'MobileNetV2'
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('loss', 'sup_loss_rpn_cls', 'sup_loss_cls', 'sup_loss_bbox',
                'unsup_loss_rpn_cls', 'unsup_loss_cls', 'unsup_loss_bbox'):
        values, _ = scalars[f'train/{key}'].data
        assert len(values) == 2 and all(math.isfinite(v) for v in values), key
    # BN statistics are trained from scratch: the EMA teacher must follow them too
    student_bn = runner.model.student.backbone.conv1.bn.running_mean
    teacher_bn = runner.model.teacher.backbone.conv1.bn.running_mean
    assert teacher_bn.abs().sum() > 0 and not torch.equal(teacher_bn, student_bn)
    # evaluated at the end with plain coco/ keys (the teacher), as the benchmark reads them
    mAP = scalars['val/coco/bbox_mAP'].current()
    assert 0.0 <= mAP <= 1.0
    assert osp.isfile(tmp_path / 'iter_2.pth')
