"""Every shipped config parses, inherits what it claims, and names registered types."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import kd_det  # noqa: F401
from conftest import REPO_ROOT

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                                      recursive=True)
                 if '/_base_/' not in p and '/benchmark/' not in p and '/deploy/' not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_config_parses_and_its_model_type_is_registered(path):
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmrazor.registry import MODELS as RAZOR_MODELS
    cfg = Config.fromfile(path)
    model_type = cfg.model.type
    registry = RAZOR_MODELS if cfg.model.get('_scope_') == 'mmrazor' else MMDET_MODELS
    assert registry.get(model_type) is not None, f'{model_type} not registered'
    if model_type == 'DetectionDistill':
        distiller = cfg.model.distiller.type
        assert RAZOR_MODELS.get(distiller) is not None, distiller
        assert MMDET_MODELS.get(cfg.model.architecture.type) is not None, \
            cfg.model.architecture.type


@pytest.mark.parametrize('spec', sorted(glob.glob(osp.join(REPO_ROOT, 'configs/benchmark/*.py'))))
def test_benchmark_specs_name_existing_configs(spec):
    from kd_det.benchmark import load_methods
    import os
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        methods = load_methods(Config.fromfile(spec))
    finally:
        os.chdir(cwd)
    assert methods[0].role == 'teacher' and methods[1].role == 'student'


@pytest.mark.parametrize('spec', sorted(glob.glob(osp.join(REPO_ROOT, 'configs/deploy/*.py'))))
def test_deploy_specs_name_known_targets_and_existing_configs(spec):
    from kd_det.deploy.table import TARGETS
    cfg = Config.fromfile(spec)
    assert set(cfg.targets) <= set(TARGETS)
    for model in cfg.models:
        assert {'name', 'config', 'checkpoint'} <= set(model)
        if not model['config'].startswith('work_dirs/'):  # produced by a documented command
            assert osp.isfile(osp.join(REPO_ROOT, model['config'])), model['config']
