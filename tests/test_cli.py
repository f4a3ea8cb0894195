"""tools/train.py and tools/test.py with mmdet's flags, and the same through `mim`."""
import json
import os
import os.path as osp
import subprocess
import sys

from conftest import REPO_ROOT, STUDENT_CONFIG, tiny_run_options

ENV = dict(os.environ, OMP_NUM_THREADS='1')


def _options(data_root):
    options = tiny_run_options(data_root, epochs=1, batch_size=8)
    return [f'{k}={v}' for k, v in options.items()]


def test_mim_train_then_test_with_resume(tiny_dataset, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    work = str(tmp_path / 'run')
    train = [mim, 'train', 'kd_det', STUDENT_CONFIG, '--work-dir', work, '--cfg-options',
             *_options(tiny_dataset)]
    proc = subprocess.run(train, capture_output=True, text=True, env=ENV, cwd=str(tmp_path),
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))

    # --resume with no path continues from the work dir's last checkpoint (nothing left to do)
    resume = [sys.executable, osp.join(REPO_ROOT, 'tools/train.py'), STUDENT_CONFIG,
              '--work-dir', work, '--resume', '--cfg-options', *_options(tiny_dataset)]
    proc = subprocess.run(resume, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'resumed epoch: 1' in (proc.stdout + proc.stderr).lower()

    out_pkl = str(tmp_path / 'preds.pkl')
    test = [mim, 'test', 'kd_det', STUDENT_CONFIG, '--checkpoint', osp.join(work, 'epoch_1.pth'),
            '--work-dir', str(tmp_path / 'test'), '--out', out_pkl, '--cfg-options',
            *_options(tiny_dataset)]
    proc = subprocess.run(test, capture_output=True, text=True, env=ENV, cwd=str(tmp_path),
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # COCO evaluation ran (a 1-epoch model may still have no detections above threshold)
    assert 'Evaluating bbox' in proc.stdout + proc.stderr
    assert osp.getsize(out_pkl) > 0
