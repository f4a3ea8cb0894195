"""Checkpoints as users bring them: written by stock mmengine/mmdet, under numpy 2, by URL, as a
directory, or of the wrong network. Safe ones load; the rest stop before training with the
setting and the fix named."""
import functools
import http.server
import os
import os.path as osp
import re
import subprocess
import sys
import threading

import pytest
import torch

from kd_det.preflight import PreflightError
from kd_det.apis.runner import build_test_runner, build_train_runner
from kd_det.utils.checkpoint import (CheckpointMismatchError, UnsafeCheckpointError,
                                     load_checkpoint_file)
from fault_table import fault_case
from reliability_helpers import (DCD_CONFIG, STUDENT_CONFIG, TEACHER_CONFIG,  # noqa: F401
                                 options, save_model_checkpoint, teacher_ckpt, tiny_data)

# what mmengine's Runner.save_checkpoint writes, in a process that never imports kd_det
STOCK_SAVE = '''
import sys, numpy as np, torch
from mmengine.logging import MessageHub
source, target, legacy = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
weights = torch.load(source, weights_only=True)
hub = MessageHub.get_instance('stock')
for i in range(3):
    hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_scalar('train/lr', 0.01)
hub.update_info('iter', 3)
params = [torch.nn.Parameter(torch.zeros(2))]
optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
params[0].grad = torch.ones(2)
optimizer.step()
meta = dict(weights['meta'], seed=np.int64(0), epoch=1, iter=3, mmengine_version='0.10.7',
            experiment_name='teacher_20261130', time='20261130_000000',
            hook_msgs=dict(last_ckpt='epoch_1.pth', best_score=np.float64(0.3)))
torch.save(dict(meta=meta, state_dict=weights['state_dict'], message_hub=hub.state_dict(),
                optimizer=optimizer.state_dict(), param_schedulers=[]), target,
           _use_new_zipfile_serialization=not legacy)
'''


def _stock_checkpoint(source: str, target: str, legacy: bool = False) -> str:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH='')
    proc = subprocess.run([sys.executable, '-c', STOCK_SAVE, source, target, str(int(legacy))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return target


@pytest.fixture(scope='module')
def stock_teacher(teacher_ckpt, tmp_path_factory):
    """The teacher as mmengine saves it without kd_det: message hub with HistoryBuffers (their
    statistics methods pickled as builtins.getattr), numpy scalars, optimizer state."""
    return _stock_checkpoint(teacher_ckpt, str(tmp_path_factory.mktemp('stock') / 'teacher.pth'))


def test_the_stock_checkpoint_pickles_getattr(stock_teacher):
    """What made kd_det refuse such teachers: HistoryBuffer's methods as builtins.getattr."""
    import zipfile
    with zipfile.ZipFile(stock_teacher) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    assert b'c__builtin__\ngetattr\n' in pickled


def test_a_stock_mmengine_teacher_distils_with_no_extra_step(stock_teacher, tiny_data,
                                                               tmp_path):
    checkpoint = load_checkpoint_file(stock_teacher)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert buffer.statistics('max') == 1.0  # the statistics methods came back
    with fault_case('teacher_ckpt written by stock mmengine/mmdet (no kd_det)',
                    lost='nothing') as outcome:
        runner = build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'),
                                    cfg_options=options(tiny_data, **{
                                        'model.teacher_ckpt': stock_teacher}))
        outcome.sees = 'the teacher loads (weights_only=True kept) and distillation starts'
    teacher = runner.model.teacher.state_dict()
    assert all(torch.equal(v, teacher[k[len('teacher.'):]] if k.startswith('teacher.') else
                           teacher[k]) for k, v in checkpoint['state_dict'].items())


def test_a_stock_checkpoint_as_load_from_and_in_tools_test(teacher_ckpt, tiny_data, tmp_path):
    student = save_model_checkpoint(STUDENT_CONFIG, str(tmp_path / 'plain_student.pth'))
    stock = _stock_checkpoint(student, str(tmp_path / 'student.pth'))
    build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                       cfg_options=options(tiny_data, load_from=stock))
    build_test_runner(STUDENT_CONFIG, stock, work_dir=str(tmp_path / 'test'),
                      cfg_options=options(tiny_data))


def test_a_checkpoint_pickled_under_numpy_2_loads(teacher_ckpt, tmp_path):
    legacy = _stock_checkpoint(teacher_ckpt, str(tmp_path / 'np1.pth'), legacy=True)
    data = open(legacy, 'rb').read()
    assert b'numpy.core.multiarray\n' in data
    numpy2 = tmp_path / 'np2.pth'  # numpy 2 names the module numpy._core
    numpy2.write_bytes(data.replace(b'numpy.core.multiarray\n', b'numpy._core.multiarray\n'))
    with fault_case('checkpoint pickled under numpy 2', lost='nothing') as outcome:
        checkpoint = load_checkpoint_file(str(numpy2))
        outcome.sees = 'loads like a numpy 1 checkpoint'
    assert int(checkpoint['meta']['seed']) == 0
    assert float(checkpoint['meta']['hook_msgs']['best_score']) == 0.3


class GetattrOfInit:
    """Unpickles as getattr(HistoryBuffer, '__init__'): a getattr that is not a statistic."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_any_other_getattr_is_still_refused(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(state_dict={}, meta=dict(hook=GetattrOfInit())), path)
    with fault_case('checkpoint whose pickle calls getattr on anything but a HistoryBuffer '
                    'statistic', lost='nothing (no code runs)',
                    raises=UnsafeCheckpointError) as outcome:
        load_checkpoint_file(path)
    assert re.search(r"refused to load .*it references getattr\(HistoryBuffer.__init__\)",
                     str(outcome.error))


@pytest.fixture
def http_server(tmp_path):
    """Serves ``tmp_path / 'www'`` on 127.0.0.1; yields (root dir, base URL)."""
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_a_teacher_by_url_is_downloaded_once_into_the_torch_hub_cache(
        stock_teacher, http_server, tiny_data, tmp_path, monkeypatch):
    root, url = http_server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    (root / 'retina_teacher.pth').write_bytes(open(stock_teacher, 'rb').read())
    build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=options(
        tiny_data, **{'model.teacher_ckpt': f'{url}/retina_teacher.pth'}))
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'retina_teacher.pth'
    assert cached.read_bytes() == open(stock_teacher, 'rb').read()
    os.remove(root / 'retina_teacher.pth')  # served no more: the cached copy is used
    assert load_checkpoint_file(f'{url}/retina_teacher.pth')['state_dict']


def test_a_url_offline_says_where_to_put_the_file(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    url = 'http://127.0.0.1:9/mmdet/retinanet_r50.pth'  # discard port: connection refused
    with fault_case('teacher_ckpt as an https:// URL, offline', lost='nothing',
                    raises=PreflightError) as outcome:
        build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=options(
            tiny_data, **{'model.teacher_ckpt': url}))
    message = str(outcome.error)
    cached = osp.join(str(tmp_path / 'torch_home'), 'hub', 'checkpoints', 'retina_r50.pth')
    assert f"checkpoint '{url}' (model.teacher_ckpt) could not be downloaded" in message
    assert f'copy it to {cached[:-len("retina_r50.pth")]}retinanet_r50.pth' in message
    assert 'does not exist' not in message


def test_a_directory_as_teacher_ckpt_names_the_checkpoint_inside(teacher_ckpt, tiny_data,
                                                                 tmp_path):
    run_dir = osp.dirname(teacher_ckpt)
    with fault_case('a directory as teacher_ckpt', lost='nothing',
                    raises=PreflightError) as outcome:
        build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=options(
            tiny_data, **{'model.teacher_ckpt': run_dir}))
    info = outcome
    assert (f"checkpoint '{run_dir}' (model.teacher_ckpt) is a directory, not a checkpoint "
            f'file; the newest complete checkpoint in it is {teacher_ckpt}') in str(info.error)


def test_tools_test_refuses_a_checkpoint_of_another_network(teacher_ckpt, tiny_data, tmp_path):
    with fault_case('tools/test.py with a checkpoint of another network', lost='nothing',
                    raises=CheckpointMismatchError) as outcome:
        build_test_runner(STUDENT_CONFIG, teacher_ckpt, work_dir=str(tmp_path / 'wd'),
                          cfg_options=options(tiny_data))
    message = str(outcome.error)
    assert f"test checkpoint '{teacher_ckpt}' does not match the test config" in message
    assert 'shape mismatches' in message and 'same layers, different widths' in message
    assert 'Evaluating it would score random weights' in message
    assert "preflight = dict(skip=['checkpoints'])" in message


def test_load_from_refuses_another_network_but_fine_tunes_across_classes(
        teacher_ckpt, tiny_data, tmp_path):
    with fault_case('load_from a checkpoint of another network', lost='nothing',
                    raises=CheckpointMismatchError) as outcome:
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data, load_from=teacher_ckpt))
    assert 'Training from it would start from random weights' in str(outcome.error)
    # a model of the same network trained on 3 classes: only the classifier differs
    other_classes = str(tmp_path / 'three_classes.pth')
    from kd_det.apis.runner import load_config
    cfg = load_config(STUDENT_CONFIG)
    cfg.model.bbox_head.num_classes = 3
    three = tmp_path / 'three.py'
    cfg.dump(str(three))
    save_model_checkpoint(str(three), other_classes, classes=('a', 'b', 'c'))
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'ft'),
                                cfg_options=options(tiny_data, load_from=other_classes))
    log = next((tmp_path / 'ft').rglob('*.log')).read_text()
    assert 'bbox_head.retina_cls.weight, bbox_head.retina_cls.bias differ in output size' in log
    assert runner is not None


def test_a_plain_student_as_load_from_of_a_distillation_config(teacher_ckpt, tiny_data,
                                                                tmp_path):
    student = save_model_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    with pytest.raises(CheckpointMismatchError, match=r'a plain detector checkpoint for a '
                       r'distillation config .*model.architecture.init_cfg'):
        build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=options(
            tiny_data, load_from=student, **{'model.teacher_ckpt': teacher_ckpt}))


def test_extract_student_refuses_a_teacher_checkpoint(teacher_ckpt, tmp_path):
    from kd_det.apis.student import extract_student
    out_dir = tmp_path / 'out'
    with fault_case('tools/extract_student.py with a plain teacher checkpoint',
                    lost='nothing (no file written)',
                    raises=CheckpointMismatchError) as outcome:
        extract_student(DCD_CONFIG, teacher_ckpt, str(out_dir))
    info = outcome
    assert f"student checkpoint '{teacher_ckpt}' does not match the student config" \
        in str(info.error)
    assert 'nothing was written' in str(info.error)
    assert not out_dir.exists()


def test_resume_with_a_changed_learning_rate_warns_that_it_does_not_apply(tiny_data, tmp_path):
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, epochs=1)
    build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts).train()
    changed = dict(opts, **{'optim_wrapper.optimizer.lr': 0.5})
    with fault_case('--resume with a changed learning rate', lost='nothing') as outcome:
        build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=changed,
                           resume='auto')
        logs = ''.join(p.read_text() for p in work_dir.rglob('*.log'))
        outcome.sees = 'WARNING - ' + logs[logs.index('--resume: the config differs'):].split(
            '\n')[0]
    assert '--resume: the config differs from the one that wrote the checkpoint: ' \
           'optim_wrapper.optimizer.lr: ' in logs
    assert "-> 0.5" in logs and 'do not apply' in logs


def test_resume_with_another_optimizer_layout_names_the_cause(tiny_data, tmp_path):
    work_dir = tmp_path / 'wd'
    opts = options(tiny_data, epochs=1)
    build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=opts).train()
    changed = dict(opts, **{'optim_wrapper.paramwise_cfg': dict(norm_decay_mult=0.0)})
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(work_dir), cfg_options=changed,
                                resume='auto')
    with fault_case('--resume after changing the optimizer layout (paramwise_cfg)',
                    lost='nothing', raises=CheckpointMismatchError) as outcome:
        runner.train()
    assert 'optim_wrapper (its optimizer type or paramwise_cfg) changed' in str(outcome.error)
