"""Registration: kd_det types next to mmdet's and mmrazor's, custom_imports, mmdet:: bases."""
import torch
from mmengine.config import Config

import kd_det  # noqa: F401
from conftest import DCD_CONFIG, STUDENT_CONFIG


def test_kd_det_types_are_registered_in_the_openmmlab_registries():
    from mmengine.registry import OPTIM_WRAPPERS
    from mmrazor.registry import MODELS as RAZOR_MODELS
    assert RAZOR_MODELS.get('DecoupledCosineDistiller') is not None
    assert RAZOR_MODELS.get('DetectionDistill') is not None
    assert OPTIM_WRAPPERS.get('BF16AutocastOptimWrapper') is not None


LIST_REGISTRATIONS = """
import importlib, json, kd_det
from kd_det.registry import KD_DET_TYPES
registries = {'mmengine': 'mmengine.registry', 'mmdet': 'mmdet.registry',
              'mmrazor': 'mmrazor.registry'}
found, seen = {}, set()
for package, module in registries.items():
    for name, registry in vars(importlib.import_module(module)).items():
        if type(registry).__name__ == 'Registry' and id(registry) not in seen:
            seen.add(id(registry))  # mmdet re-exports mmengine's roots under other names
            kd = sorted(k for k, v in registry.module_dict.items()
                        if getattr(v, '__module__', '').startswith('kd_det'))
            if kd:
                found[f'{package}.{name}'] = kd
print(json.dumps(dict(found=found, declared={k: sorted(v) for k, v in KD_DET_TYPES.items()})))
"""


def test_import_kd_det_registers_exactly_what_the_registry_rule_says():
    """In a fresh process, `import kd_det` alone registers every kd_det type (datasets
    included) where kd_det/registry.py says, and nothing it does not list."""
    import json
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-c', LIST_REGISTRATIONS], capture_output=True,
                          text=True, timeout=300, env=dict(__import__('os').environ,
                                                           OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['found'] == result['declared']


def test_kd_det_scope_falls_back_to_mmdet_types():
    """Configs loaded through kd_det:: bases carry _scope_='kd_det' (mmengine adds it)."""
    from kd_det.registry import DATASETS, MODELS
    assert MODELS.get('RetinaNet').__module__.startswith('mmdet')
    assert DATASETS.get('CocoDataset').__module__.startswith('mmdet')
    assert Config.fromfile(DCD_CONFIG).train_dataloader.dataset.get('_scope_') in (None,
                                                                                     'kd_det')


def test_configs_import_only_kd_det():
    import glob
    import os.path as osp
    from conftest import REPO_ROOT
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True):
        text = open(path).read()
        assert "'kd_det." not in text.split('custom_imports', 1)[-1].split(')', 1)[0], path


def test_config_declares_custom_imports_and_inherits_stock_mmdet_bases():
    cfg = Config.fromfile(STUDENT_CONFIG)
    assert cfg.custom_imports == dict(imports=['kd_det'], allow_failed_imports=False)
    # from mmdet's retinanet base: head type, losses and the assigner stay stock
    assert cfg.model.type == 'RetinaNet'
    assert cfg.model.bbox_head.loss_cls.type == 'FocalLoss'
    assert cfg.model.train_cfg.assigner.type == 'MaxIoUAssigner'
    # and the from-scratch overrides are in place
    assert cfg.model.backbone.frozen_stages == -1 and cfg.model.backbone.norm_eval is False


def test_stock_mmdet_config_still_builds_with_kd_det_imported():
    from mmdet.registry import MODELS
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    cfg = get_config('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'RetinaNet'


def test_distillation_config_builds_student_teacher_and_distiller():
    from mmrazor.registry import MODELS
    cfg = Config.fromfile(DCD_CONFIG)
    cfg.model.teacher_ckpt = None
    algorithm = MODELS.build(cfg.model)
    assert type(algorithm.student).__name__ == 'RetinaNet'
    assert algorithm.teacher.neck.out_channels == 128
    assert algorithm.student.neck.out_channels == 64
    # teacher frozen; the connectors 64 -> 128 belong to the distiller and are trained
    assert not any(p.requires_grad for p in algorithm.teacher.parameters())
    connector = algorithm.distiller.feature_connectors[0]
    assert isinstance(connector, torch.nn.Conv2d) and connector.weight.shape[:2] == (128, 64)
