"""A NaN/Inf loss is caught at its step, named, and never reaches the weights."""
import math
import re

import pytest
import torch

import fault_injection  # noqa: F401  (registers the fault-injection hooks)
from fault_injection import all_finite
from fault_table import fault_case
from kd_det.apis.runner import build_test_runner, build_train_runner
from kd_det.engine.hooks.nan_guard_hook import (SKIPPED_STEPS, NonFiniteLossError,
                                                non_finite_losses)
from kd_det.utils.checkpoint import load_checkpoint_file
from reliability_helpers import (DCD_CONFIG, STUDENT_CONFIG, options,  # noqa: F401
                                 teacher_ckpt, tiny_data)


def test_non_finite_losses_names_only_summed_terms():
    losses = dict(loss_cls=torch.tensor(1.0), loss_bbox=[torch.tensor(2.0),
                                                         torch.tensor(float('inf'))],
                  gate_ratio=torch.tensor(float('nan')), loss_kd=torch.tensor(float('nan')))
    assert non_finite_losses(losses) == ['loss_bbox', 'loss_kd']
    assert non_finite_losses(dict(loss=torch.tensor(0.5))) == []


def _hooks(*hooks):
    return {'custom_hooks': [dict(type='CountOptimizerStepsHook'), *hooks]}


def test_nan_step_is_skipped_counted_and_training_goes_on(tiny_data, tmp_path):
    opts = options(tiny_data, epochs=1, **_hooks(
        dict(type='NanGuardHook'), dict(type='InjectLossHook', loss_name='loss_cls',
                                        iterations=(1, ))))
    with fault_case('NaN loss (NanGuardHook skip)', lost='one optimizer step') as outcome:
        runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                                    cfg_options=opts)
        runner.train()
        outcome.sees = 'WARNING - non-finite loss' + next((tmp_path / 'wd').rglob(
            '*.log')).read_text().split('non-finite loss', 1)[1].split('\n')[0]
    hub = runner.message_hub
    assert hub.get_info(SKIPPED_STEPS) == 1
    assert hub.get_info('test/optimizer_steps') == 3  # 4 iterations, one skipped
    assert all_finite(runner.model)
    log = next((tmp_path / 'wd').rglob('*.log')).read_text()
    assert 'non-finite loss at iteration 2 (epoch 1): loss_cls=nan. Skipped this step ' \
           '(no update); 1/10 steps skipped so far' in log
    assert 'Lower the learning rate or the distillation loss weights' in log


def test_inf_in_a_distill_loss_with_bf16_amp_is_skipped(tiny_data, teacher_ckpt, tmp_path):
    opts = options(tiny_data, epochs=1, **_hooks(
        dict(type='NanGuardHook'), dict(type='InjectLossHook', loss_name='distill.loss_fg_cos',
                                        iterations=(0, 2), value=float('inf'))),
        **{'model.teacher_ckpt': teacher_ckpt})
    runner = build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=opts,
                                amp=True)
    runner.train()
    assert type(runner.optim_wrapper).__name__ == 'BF16AutocastOptimWrapper'
    assert runner.message_hub.get_info(SKIPPED_STEPS) == 2
    assert runner.message_hub.get_info('test/optimizer_steps') == 2
    assert all_finite(runner.model)


def test_stop_saves_the_weights_before_the_fault_and_they_evaluate(tiny_data, teacher_ckpt,
                                                                   tmp_path):
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, epochs=2, **_hooks(
        dict(type='NanGuardHook', action='stop'),
        dict(type='InjectLossHook', loss_name='distill.loss_fg_cos', iterations=(5, ))),
        **{'model.teacher_ckpt': teacher_ckpt,
           'default_hooks.checkpoint': dict(type='AtomicCheckpointHook', interval=2,
                                            by_epoch=False)})
    runner = build_train_runner(DCD_CONFIG, work_dir=str(work_dir), cfg_options=opts)
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    saved = str(work_dir / 'nan_stop_iter_5.pth')
    assert 'non-finite loss at iteration 6 (epoch 2): distill.loss_fg_cos=nan' in message
    assert 'Training stopped before the update' in message
    assert f'The weights from before this step are saved in {saved}' in message
    assert runner.message_hub.get_info('test/optimizer_steps') == 5

    # nothing is lost: the saved weights are the live (pre-fault) ones, finite, and evaluate
    checkpoint = load_checkpoint_file(saved)
    assert checkpoint['meta']['iter'] == 5
    live = runner.model.state_dict()
    assert all(torch.equal(v, live[k]) for k, v in checkpoint['state_dict'].items())
    assert all(torch.isfinite(v).all() for v in checkpoint['state_dict'].values()
               if torch.is_floating_point(v))
    assert (work_dir / 'iter_4.pth').exists()
    test_opts = options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt,
                                      'model.architecture.test_cfg.score_thr': 0.0})
    metrics = build_test_runner(DCD_CONFIG, saved, work_dir=str(tmp_path / 'test'),
                                cfg_options=test_opts).test()
    assert math.isfinite(metrics['coco/bbox_mAP'])


def test_too_many_skipped_steps_stop_the_run(tiny_data, tmp_path):
    opts = options(tiny_data, epochs=1, **_hooks(
        dict(type='NanGuardHook', max_skips=1),
        dict(type='InjectLossHook', loss_name='loss_bbox', iterations=(0, 1, 2))))
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=opts)
    with pytest.raises(NonFiniteLossError, match='more than max_skips=1 steps had non-finite '
                       'losses') as info:
        runner.train()
    assert 'non-finite loss at iteration 2 (epoch 1): loss_bbox=nan' in str(info.value)
    assert (tmp_path / 'wd' / 'nan_stop_iter_1.pth').exists()
    assert all_finite(runner.model)


def test_bad_action_is_refused():
    from kd_det.engine.hooks import NanGuardHook
    with pytest.raises(ValueError, match="action must be one of"):
        NanGuardHook(action='ignore')


def test_nan_gradient_with_finite_losses_is_skipped(tiny_data, tmp_path):
    opts = options(tiny_data, epochs=1, **_hooks(
        dict(type='NanGuardHook'), dict(type='InjectGradientHook', param_name='bbox_head',
                                        iterations=(1, ))))
    with fault_case('NaN gradient with finite losses (NanGuardHook skip)',
                    lost='one optimizer step') as outcome:
        runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                                    cfg_options=opts)
        runner.train()
        log = next((tmp_path / 'wd').rglob('*.log')).read_text()
        outcome.sees = 'WARNING - non-finite gradient' + log.split(
            'non-finite gradient', 1)[1].split('\n')[0]
    assert runner.message_hub.get_info(SKIPPED_STEPS) == 1
    assert runner.message_hub.get_info('test/optimizer_steps') == 3
    assert all_finite(runner.model)
    assert 'non-finite gradient at iteration 2 (epoch 1): ' in log
    assert 'are NaN/Inf although every loss is finite. Skipped this step (no update)' in log


def test_nan_gradient_with_stop_saves_finite_weights(tiny_data, tmp_path):
    opts = options(tiny_data, epochs=1, **_hooks(
        dict(type='NanGuardHook', action='stop'),
        dict(type='InjectGradientHook', param_name='backbone', iterations=(2, ),
             value=float('inf'))))
    work_dir = tmp_path / 'wd'
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts)
    with fault_case("Inf gradient with NanGuardHook(action='stop')",
                    lost='nothing (weights before the step saved)',
                    raises=NonFiniteLossError) as outcome:
        runner.train()
    assert 'non-finite gradient at iteration 3' in str(outcome.error)
    saved = load_checkpoint_file(str(work_dir / 'nan_stop_iter_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in saved.values() if torch.is_floating_point(v))


def test_a_checkpoint_of_nan_weights_is_refused_and_the_old_one_kept(tiny_data, tmp_path):
    from kd_det.engine.hooks.nan_guard_hook import NonFiniteWeightsError
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, epochs=1, **_hooks(dict(type='NanGuardHook')),
                   **{'default_hooks.checkpoint': dict(type='AtomicCheckpointHook', interval=2,
                                                       by_epoch=False, max_keep_ckpts=1)})
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts)
    runner.train()
    good = work_dir / 'iter_4.pth'
    assert good.exists() and not (work_dir / 'iter_2.pth').exists()
    with torch.no_grad():
        next(runner.model.parameters()).fill_(float('nan'))
    with fault_case('saving a checkpoint of NaN weights', lost='nothing (older checkpoints '
                    'kept)', raises=NonFiniteWeightsError) as outcome:
        runner.save_checkpoint(str(work_dir), 'iter_5.pth')
    assert re.search(r'refused to save a checkpoint at iteration 4: 1 of \d+ tensors '
                     r'\(backbone', str(outcome.error))
    assert 'The checkpoints already in' in str(outcome.error)
    assert not (work_dir / 'iter_5.pth').exists() and good.exists()
