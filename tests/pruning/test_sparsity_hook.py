"""Sparsity penalty math, the hook's proximal step and schedule, and its state across resume."""
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from conftest import REPO_ROOT, tiny_run_options
from kd_det.pruning.group_lasso import group_lasso, group_lasso_prox, relu_l1_prox
from kd_det.pruning import SparsityHook
from kd_det.pruning.importance import channel_rms

SPARSE_CONFIG = osp.join(
    REPO_ROOT, 'configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded_sparse.py')


def test_group_lasso_value_and_gradient_on_known_rows():
    rows = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], requires_grad=True)
    penalty = group_lasso(rows)
    assert torch.isclose(penalty, torch.tensor(math.sqrt(2) * (5.0 + 0.0 + 1.0)))
    penalty.backward()
    # sqrt(k) * row / ||row||, and 0 (a valid subgradient) for the all-zero row
    expected = math.sqrt(2) * torch.tensor([[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    assert torch.allclose(rows.grad, expected)


def test_group_lasso_prox_is_group_soft_threshold():
    rows = torch.tensor([[3.0, 4.0], [0.1, 0.0], [1.0, 0.0]])
    step = 0.5 / math.sqrt(2)  # threshold step * sqrt(k) = 0.5
    out = group_lasso_prox(rows, step)
    assert torch.allclose(out, torch.tensor([[2.7, 3.6], [0.0, 0.0], [0.5, 0.0]]))
    assert out[1].abs().sum() == 0  # exactly zero, not just small


def test_relu_l1_prox_stops_at_zero_and_leaves_dead_weights():
    out = relu_l1_prox(torch.tensor([1.0, 0.05, -0.2]), 0.1)
    assert torch.allclose(out, torch.tensor([0.9, 0.0, -0.2]))


def test_schedule_warmup_then_linear_ramp():
    hook = SparsityHook(warmup=10, ramp=4)
    assert [hook.weight_scale(i) for i in (0, 9, 10, 11, 13, 100)] == [0, 0, 0.25, 0.5, 1, 1]
    hook = SparsityHook(warmup=1, ramp=2, by_epoch=True)
    hook._iters_per_unit = 10
    # iteration 14 is the 5th of epoch 2 (0-based): 5 of the 20 ramp iterations done
    assert hook.weight_scale(9) == 0 and hook.weight_scale(14) == pytest.approx(0.25)
    assert hook.weight_scale(29) == 1.0


def _fake_runner(model, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return SimpleNamespace(model=model, optim_wrapper=SimpleNamespace(optimizer=optimizer),
                           message_hub=MessageHub.get_instance('test_sparsity_hook'), iter=0,
                           train_dataloader=[None] * 5)


def test_hook_shrinks_channel_rms_by_lr_times_weight():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from kd_det.apis.runner import load_config
    init_default_scope('mmdet')
    model = MODELS.build(load_config(SPARSE_CONFIG).model)
    runner = _fake_runner(model, lr=0.01)
    hook = SparsityHook(channel_weight=dict(neck=2.0, backbone=1.0, head=0.0),
                        fusion_weight=3.0)
    hook.before_train(runner)
    groups = {g.name: g for g in hook.groups}
    neck_before = channel_rms(groups['neck']).clone()
    block_before = channel_rms(groups['backbone.layer3.1']).clone()
    head_before = channel_rms(groups['bbox_head.cls_convs.0']).clone()
    hook.after_train_iter(runner, 0)
    # RMS of every row drops by exactly lr * weight; head weight 0 leaves it alone
    assert torch.allclose(channel_rms(groups['neck']), neck_before - 0.02, atol=1e-6)
    assert torch.allclose(channel_rms(groups['backbone.layer3.1']), block_before - 0.01,
                          atol=1e-6)
    assert torch.equal(channel_rms(groups['bbox_head.cls_convs.0']), head_before)
    assert torch.allclose(model.neck.layers[0].nodes['out2'].fusion_weight,
                          torch.full((3, ), 1 - 0.03))
    assert hook.state == dict(steps=1, total_scale=1.0)
    # a channel below the step size is zeroed exactly and logged as sparse
    bn = model.neck.lateral_convs[0].bn
    for param in groups['neck'].scales:
        param.data[:16] = 1e-3
    hook.after_train_iter(runner, 1)
    assert bn.weight[:16].abs().sum() == 0 and bn.bias[:16].abs().sum() == 0
    logged = runner.message_hub.get_scalar('train/sparsity/neck').current()
    assert logged == pytest.approx(16 / 64)


def test_hook_state_survives_resume(tiny_dataset, tmp_path):
    from kd_det.apis.runner import build_train_runner
    from kd_det.utils.checkpoint import load_checkpoint_file
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=16)  # 3 iterations per epoch
    options.update({'train_cfg.val_interval': 100, 'custom_hooks.0.warmup': 0,
                    'custom_hooks.0.ramp': 0, 'custom_hooks.0.by_epoch': False})
    runner = build_train_runner(SPARSE_CONFIG, work_dir=str(tmp_path), cfg_options=options)
    runner.train()
    first = load_checkpoint_file(str(tmp_path / 'epoch_1.pth'))['sparsity_hook']
    assert first['state'] == dict(steps=3, total_scale=3.0)

    options['train_cfg.max_epochs'] = 2
    options['default_hooks.checkpoint.interval'] = 1
    resumed = build_train_runner(SPARSE_CONFIG, work_dir=str(tmp_path), cfg_options=options,
                                 resume='auto')
    resumed.train()
    hook = next(h for h in resumed.hooks if isinstance(h, SparsityHook))
    assert hook.state == dict(steps=6, total_scale=6.0)
    second = load_checkpoint_file(str(tmp_path / 'epoch_2.pth'))['sparsity_hook']
    assert second['state'] == dict(steps=6, total_scale=6.0)


def test_hook_sparsifies_the_student_of_a_distillation_model():
    from mmrazor.registry import MODELS
    from kd_det.apis.runner import load_config
    cfg = load_config(osp.join(
        REPO_ROOT, 'configs/sparse_bifpn/dcd_retinanet_mnv2-sparsebifpn64_embedded_sparse.py'))
    cfg.model.teacher_ckpt = None
    algorithm = MODELS.build(cfg.model)
    runner = _fake_runner(algorithm, lr=0.01)
    hook = SparsityHook(**{k: v for k, v in cfg.custom_hooks[0].items() if k != 'type'})
    hook.before_train(runner)
    student_params = {id(p) for p in algorithm.student.parameters()}
    assert hook.groups and all(id(p) in student_params for g in hook.groups for p in g.scales)
    assert hook.groups[0].name == 'neck' and hook.groups[0].num_channels == 64
