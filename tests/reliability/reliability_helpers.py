"""Shared set-up of the reliability tests: tiny data, a teacher checkpoint, child configs."""
import os.path as osp
import shutil

import pytest
import torch

from conftest import DCD_CONFIG, REPO_ROOT, STUDENT_CONFIG, TEACHER_CONFIG, tiny_run_options

PKD_CONFIG = osp.join(REPO_ROOT, 'configs/mmrazor_baselines/pkd_fpn_embedded.py')
__all__ = ['DCD_CONFIG', 'PKD_CONFIG', 'STUDENT_CONFIG', 'TEACHER_CONFIG']


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """16 train / 8 val images of the embedded dataset; copy it before changing it."""
    from kd_det.datasets.synthetic import generate_dataset
    root = str(tmp_path_factory.mktemp('reliability_data'))
    generate_dataset(root, num_train=16, num_val=8, seed=0)
    return root


@pytest.fixture
def own_data(tiny_data, tmp_path):
    """A private copy of the tiny dataset that a test may corrupt."""
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_data, root)
    return root


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """The embedded teacher (untrained) saved the way mmengine saves it, with dataset_meta."""
    return save_model_checkpoint(TEACHER_CONFIG, str(tmp_path_factory.mktemp('teacher') /
                                                     'teacher.pth'))


def save_model_checkpoint(config: str, path: str, classes=None, seed: int = 0) -> str:
    from mmdet.registry import MODELS

    from kd_det.apis.runner import load_config
    from kd_det.datasets.synthetic import SYNTHETIC_CLASSES
    torch.manual_seed(seed)
    model = MODELS.build(dict(load_config(config).model, _scope_='mmdet'))
    model.init_weights()
    meta = dict(dataset_meta=dict(classes=tuple(classes or SYNTHETIC_CLASSES)), epoch=1, iter=1)
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return path


def options(data_root: str, epochs: int = 1, batch_size: int = 4, prefix: str = '',
            **extra) -> dict:
    """tiny_run_options with the dataset keys moved below ``prefix`` (for wrapped datasets)."""
    opts = tiny_run_options(data_root, epochs=epochs, batch_size=batch_size)
    if prefix:
        key = 'train_dataloader.dataset.data_root'
        opts[key.replace('dataset.', f'dataset.{prefix}', 1)] = opts.pop(key)
    opts.update(extra)
    return opts


def child_config(tmp_path, base: str, body: str, name: str = 'child.py') -> str:
    """A config file inheriting ``base`` with ``body`` appended (what a user would write)."""
    path = tmp_path / name
    path.write_text(f'_base_ = {base!r}\n{body}\n')
    return str(path)
