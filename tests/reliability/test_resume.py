"""A run SIGKILLed mid-epoch and resumed ends exactly like one that never stopped.

The killed run is ``python tools/train.py`` in a subprocess, killed with SIGKILL (no cleanup,
no exception handlers) in the middle of its second epoch; it is resumed the way
``tools/train.py --resume`` does it. The distiller's connectors, the optimizer, the schedulers,
the NaN guard's and the data-fault hook's counters and the random generators all come back.
"""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from fault_table import fault_case
from kd_det.apis.runner import build_train_runner
from kd_det.engine.hooks.atomic_checkpoint_hook import TMP_SUFFIX, atomic_write_bytes
from kd_det.engine.hooks.data_fault_hook import SKIPPED_IMAGES
from kd_det.engine.hooks.nan_guard_hook import SKIPPED_STEPS
from kd_det.utils.checkpoint import latest_complete_checkpoint, load_checkpoint_file
from reliability_helpers import (DCD_CONFIG, child_config, options, own_data,  # noqa: F401
                                 teacher_ckpt, tiny_data)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
KILL_AT = 7  # 0-based iteration; 2 epochs x 4 iterations, checkpoints after iterations 3 and 6
RESUMABLE = '\n'.join([
    "custom_imports = dict(imports=['kd_det', 'fault_injection'], allow_failed_imports=False)",
    "train_cfg = dict(type='ResumableEpochBasedTrainLoop')",
    "default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=3,",
    "                                     by_epoch=False, max_keep_ckpts=2))",
    'randomness = dict(seed=0, deterministic=True)',
    'train_dataloader = dict(dataset=dict(',
    "    _delete_=True, type='FaultTolerantDataset', dataset=_base_.train_dataloader.dataset))",
    'custom_hooks = [',
    "    dict(type='NanGuardHook'), dict(type='DataFaultHook'),",
    "    dict(type='InjectLossHook', loss_name='distill.loss_fg_cos', iterations=(1, )),",
    "    dict(type='KillAtIterationHook', iteration=int(__import__('os').environ.get(",
    "        'KD_DET_TEST_KILL_AT', -1)))]",
])


def _cli(opts: dict) -> list:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


@pytest.fixture
def deterministic():
    yield
    torch.use_deterministic_algorithms(False)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(own_data, teacher_ckpt,
                                                                    tmp_path, deterministic):
    path = osp.join(own_data, 'train/000005.png')  # a corrupt image: skipped in both runs
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    config = child_config(tmp_path, DCD_CONFIG, RESUMABLE)
    opts = options(own_data, epochs=2, prefix='dataset.',
                   **{'model.teacher_ckpt': teacher_ckpt,
                      'model.architecture.test_cfg.score_thr': 0.0})

    # 1. killed: tools/train.py, SIGKILL before iteration 8 (last checkpoint: iteration 6)
    killed_dir = str(tmp_path / 'killed')
    env = dict(os.environ, OMP_NUM_THREADS='1', KD_DET_TEST_KILL_AT=str(KILL_AT),
               PYTHONPATH=os.pathsep.join([HERE, REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', killed_dir]
                          + _cli(opts), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert latest_complete_checkpoint(killed_dir) == osp.join(killed_dir, 'iter_6.pth')
    state = load_checkpoint_file(osp.join(killed_dir, 'iter_6.pth'))['state_dict']
    assert any(k.startswith('distiller.feature_connectors.') for k in state)

    # 2. resumed like `tools/train.py --resume`
    resumed = build_train_runner(config, work_dir=killed_dir, cfg_options=opts, resume='auto')
    resumed_metrics = _train_and_validate(resumed)
    logs = ''.join(open(p).read() for p in _logs(killed_dir) if p.endswith('.log'))
    assert 'resuming epoch 2 at batch 3/4: skipping the 2 batches' in logs

    # 3. uninterrupted, same seed
    straight = build_train_runner(config, work_dir=str(tmp_path / 'straight'),
                                  cfg_options=opts)
    straight_metrics = _train_and_validate(straight)

    assert resumed.iter == straight.iter == 8
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, different[:5]
    assert resumed_metrics == straight_metrics
    for key, value in ((SKIPPED_STEPS, 1), (SKIPPED_IMAGES, 1)):
        assert resumed.message_hub.get_info(key) == straight.message_hub.get_info(key) == value
    assert resumed.optim_wrapper.state_dict()['state'].keys() == \
        straight.optim_wrapper.state_dict()['state'].keys()


def _train_and_validate(runner):
    runner.train()
    return runner.val_loop.run()


def _logs(work_dir):
    for root, _, files in os.walk(work_dir):
        for name in files:
            yield osp.join(root, name)


def test_atomic_write_keeps_the_old_file_when_killed_while_saving(tmp_path):
    target = tmp_path / 'iter_6.pth'
    target.write_bytes(b'old complete checkpoint')
    script = '\n'.join([
        'import os, signal, sys',
        'from kd_det.engine.hooks.atomic_checkpoint_hook import atomic_write_bytes',
        'os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die mid-save',
        f'atomic_write_bytes(b"new" * 1000000, {str(target)!r})',
    ])
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b'old complete checkpoint'
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert len(leftovers) == 1  # removed by AtomicCheckpointHook at the next start
    atomic_write_bytes(b'new', str(target))
    assert target.read_bytes() == b'new'


def test_resume_skips_an_empty_pointer_and_a_cut_checkpoint(tmp_path):
    good, cut = tmp_path / 'iter_3.pth', tmp_path / 'iter_6.pth'
    torch.save(dict(state_dict={}), str(good))
    torch.save(dict(state_dict={'w': torch.zeros(1000)}), str(cut))
    cut.write_bytes(cut.read_bytes()[:300])
    os.utime(str(good), (1, 1))  # older than the cut one
    (tmp_path / 'last_checkpoint').write_text(str(cut))
    assert latest_complete_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'last_checkpoint').write_text('')
    assert latest_complete_checkpoint(str(tmp_path)) == str(good)
    good.unlink()
    assert latest_complete_checkpoint(str(tmp_path)) is None


def test_resume_auto_uses_the_complete_checkpoint(tiny_data, tmp_path):
    from conftest import STUDENT_CONFIG
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, **{'train_cfg.type': 'ResumableEpochBasedTrainLoop',
                                 'default_hooks.checkpoint.type': 'AtomicCheckpointHook',
                                 'default_hooks.checkpoint.interval': 2,
                                 'default_hooks.checkpoint.by_epoch': False,
                                 'default_hooks.checkpoint.max_keep_ckpts': 2})
    build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts).train()
    cut = work_dir / 'iter_4.pth'
    cut.write_bytes(cut.read_bytes()[:1000])  # as if the job died while mmengine saved it
    (work_dir / f'iter_6.pth.x{TMP_SUFFIX}').write_bytes(b'half')
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts,
                                resume='auto')
    assert runner.cfg.load_from == str(work_dir / 'iter_2.pth')
    runner.train()
    assert runner.iter == 4  # mmengine's EpochBasedTrainLoop would replay the epoch: 6
    assert not list(work_dir.glob(f'*{TMP_SUFFIX}'))


def test_resume_refuses_when_every_checkpoint_is_cut(tiny_data, tmp_path):
    from conftest import STUDENT_CONFIG

    from kd_det.preflight import PreflightError
    work_dir = tmp_path / 'wd'
    work_dir.mkdir()
    (work_dir / 'epoch_1.pth').write_bytes(b'PK\x03\x04 cut short')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_1.pth'))
    with pytest.raises(PreflightError, match='epoch_1.pth.* but none is complete'):
        build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=options(
            tiny_data), resume='auto')


def test_relative_pointer_as_mmengine_writes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs('work_dirs/run')
    torch.save(dict(state_dict={}), 'work_dirs/run/iter_2.pth')
    with open('work_dirs/run/last_checkpoint', 'w') as f:
        f.write('work_dirs/run/iter_2.pth')
    assert latest_complete_checkpoint('work_dirs/run') == 'work_dirs/run/iter_2.pth'


def test_the_documented_crash_safe_block_trains(tiny_data, tmp_path):
    """The config block of docs/reliability.md, pasted into a child config, as written."""
    from conftest import STUDENT_CONFIG
    doc = open(osp.join(REPO, 'docs/reliability.md')).read()
    block = doc.split('### A crash-safe config')[1].split('```python\n')[1].split('```')[0]
    config = child_config(tmp_path, STUDENT_CONFIG, block)
    opts = options(tiny_data, prefix='dataset.', **{'default_hooks.checkpoint.interval': 3})
    runner = build_train_runner(config, work_dir=str(tmp_path / 'wd'), cfg_options=opts)
    runner.train()
    assert [type(h).__name__ for h in runner.hooks].count('AtomicCheckpointHook') == 1
    assert {'NanGuardHook', 'DataFaultHook'} <= {type(h).__name__ for h in runner.hooks}
    assert type(runner.train_loop).__name__ == 'ResumableEpochBasedTrainLoop'
    assert (tmp_path / 'wd' / 'iter_3.pth').exists()


def test_a_save_that_dies_keeps_the_previous_checkpoint_with_max_keep_ckpts_1(tiny_data,
                                                                               tmp_path):
    """mmengine deletes the old checkpoint before writing the new one; a kill in between left
    nothing to resume from. AtomicCheckpointHook writes first, then deletes."""
    from conftest import STUDENT_CONFIG
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, epochs=1, **{
        'default_hooks.checkpoint': dict(type='AtomicCheckpointHook', interval=2,
                                         by_epoch=False, max_keep_ckpts=1)})
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts)
    save = runner.save_checkpoint

    def dies_at_the_second_save(out_dir, filename, *args, **kwargs):
        if filename == 'iter_4.pth':
            raise KeyboardInterrupt('killed while saving')
        return save(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = dies_at_the_second_save
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']
    assert latest_complete_checkpoint(str(work_dir)) == str(work_dir / 'iter_2.pth')
    with fault_case('killed while saving with max_keep_ckpts=1, then --resume',
                    lost='the steps since the previous checkpoint') as outcome:
        resumed = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts,
                                     resume='auto')
        resumed.train()
        outcome.sees = 'training resumes from the previous checkpoint (iter_2.pth), kept ' \
            'until the new one was written'
    # from iteration 2; mmengine's EpochBasedTrainLoop replays the interrupted epoch (4 more)
    assert resumed.iter == 6
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_6.pth']
