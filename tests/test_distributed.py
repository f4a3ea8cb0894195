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


def _launch_two_processes(config, options, work_dir):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
           osp.join(REPO_ROOT, 'tools', 'train.py'), config, '--launcher', 'pytorch',
           '--work-dir', str(work_dir), '--cfg-options']
    cmd += [f'{k}={v}' for k, v in options.items()]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_two_process_pytorch_launcher_trains_on_cpu(tiny_dataset, tmp_path):
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=4)
    options.update({'env_cfg.dist_cfg.backend': 'gloo', 'train_cfg.val_interval': 100,
                    'default_hooks.logger.interval': 1})
    log = _launch_two_processes(STUDENT_CONFIG, options, tmp_path)
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


def test_fisher_pruning_under_two_processes_cuts_one_model(tiny_dataset, tmp_path):
    """The hook under DDP: importance summed over the processes (gloo), the main process alone
    writes the cut model, and the cut is exact."""
    from kd_det.apis.student import build_student
    from kd_det.deploy.complexity import params_and_flops
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=4)
    options.update({'env_cfg.dist_cfg.backend': 'gloo', 'train_cfg.val_interval': 100,
                    'load_from': None, 'custom_hooks.0.end': 4, 'custom_hooks.0.interval': 2,
                    'custom_hooks.0.flops_target': 0.6})
    config = osp.join(REPO_ROOT,
                      'configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py')
    _launch_two_processes(config, options, tmp_path)
    pruned = tmp_path / 'pruned'
    with open(pruned / 'prune_report.json') as f:
        report = json.load(f)
    assert report['max_output_change'] < 1e-4
    assert report['flops_ratio'] <= 0.6
    model = build_student(str(pruned / 'pruned.py'), str(pruned / 'pruned.pth'))
    assert params_and_flops(model, (3, 160, 160))['flops'] == report['flops_after']
