"""Distributed training through mmengine's launcher: 2 CPU processes with the gloo backend."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

from conftest import REPO_ROOT, STUDENT_CONFIG, tiny_run_options


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_process_pytorch_launcher_trains_on_cpu(tiny_dataset, tmp_path):
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=4)
    options.update({'env_cfg.dist_cfg.backend': 'gloo', 'train_cfg.val_interval': 100,
                    'default_hooks.logger.interval': 1})
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
           osp.join(REPO_ROOT, 'tools', 'train.py'), STUDENT_CONFIG, '--launcher', 'pytorch',
           '--work-dir', str(tmp_path), '--cfg-options']
    cmd += [f'{k}={v}' for k, v in options.items()]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log or 'launcher: pytorch' in log
    assert "'world_size': 2" in log or 'world_size: 2' in log or 'Distributed training: True' \
        in log
    # 48 images / (2 processes x 4 per batch) = 6 iterations per epoch
    scalars = [osp.join(r, f) for r, _, files in os.walk(tmp_path) for f in files
               if f == 'scalars.json']
    with open(scalars[0]) as f:
        steps = [json.loads(line) for line in f if '"loss"' in line]
    assert steps and steps[-1]['iter'] == 6
    assert osp.isfile(tmp_path / 'epoch_1.pth')
