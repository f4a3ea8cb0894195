"""Shared fixtures: a tiny embedded dataset and config overrides for seconds-long runs."""
import os
import os.path as osp
import uuid

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDENT_CONFIG = osp.join(REPO_ROOT, 'configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
TEACHER_CONFIG = osp.join(REPO_ROOT,
                          'configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
DCD_CONFIG = osp.join(REPO_ROOT, 'configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py')


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
    """48 train / 16 val images of the embedded dataset (seconds to generate)."""
    from kd_det.datasets.synthetic import generate_dataset
    root = str(tmp_path_factory.mktemp('tiny_synthetic'))
    generate_dataset(root, num_train=48, num_val=16, seed=0)
    return root


def tiny_run_options(data_root: str, epochs: int = 1, batch_size: int = 4) -> dict:
    """--cfg-options for a short single-process run on ``data_root`` without worker processes."""
    from kd_det.benchmark.options import dataset_options, schedule_options
    options = dataset_options(data_root)
    options.update(schedule_options(epochs))
    options.update({
        'train_dataloader.batch_size': batch_size,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'param_scheduler.0.end': 10,
        'default_hooks.logger.interval': 5,
        'randomness.seed': 0,
        # mmengine's logger and visualizer are per-name singletons (the experiment name: config
        # and second; mmdet's visualizer: always 'visualizer'): a second runner in the process
        # would write its logs and scalars into the first one's work dir
        'experiment_name': f'test_{uuid.uuid4().hex[:12]}',
        'visualizer.name': f'visualizer_{uuid.uuid4().hex[:12]}',
    })
    return options


def train_tiny_distillation(config: str, teacher_config: str, data_root: str,
                            work_dir: str) -> dict:
    """One epoch of ``config`` on ``data_root`` (batch 8) from a random-weight teacher of
    ``teacher_config`` saved to ``work_dir/teacher.pth``; returns the cfg-options used."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from kd_det.apis.runner import build_train_runner
    init_default_scope('mmdet')
    teacher = MODELS.build(Config.fromfile(teacher_config).model)
    teacher_ckpt = osp.join(work_dir, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)
    options = tiny_run_options(data_root, epochs=1, batch_size=8)
    options['model.teacher_ckpt'] = teacher_ckpt
    build_train_runner(config, work_dir=work_dir, cfg_options=options).train()
    return options


def semi_run_options(data_root: str, iters: int, warmup: int = 5) -> dict:
    """--cfg-options for a short iteration-based run of a labeled + unlabeled config (two
    datasets in a ConcatDataset) on ``data_root``, without worker processes."""
    root = data_root.rstrip('/') + '/'
    options = {f'train_dataloader.dataset.datasets.{i}.data_root': root for i in (0, 1)}
    options.update({
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'param_scheduler.0.end': warmup, 'param_scheduler.1.end': iters,
        'default_hooks.checkpoint.interval': iters, 'default_hooks.logger.interval': 5,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
        'randomness.seed': 0,
        'experiment_name': f'test_{uuid.uuid4().hex[:12]}',
        'visualizer.name': f'visualizer_{uuid.uuid4().hex[:12]}'})
    return options


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tests run beside other work on 2 cores; one thread each keeps them predictable."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get('KD_DET_TEST_THREADS', '1')))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_default_scope():
    """Give each test the default registry scope it started with.

    Building a Runner sets mmengine's process-wide default scope (``mmdet`` for stock configs);
    a later test that builds from mmrazor's registry would then look its types up in mmdet's.
    """
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
