"""Where kd_det's modules are registered, and the ``kd_det`` scope: one rule.

Every kd_det module registers, under its own class name, in the registry of the OpenMMLab
package whose kind of module it is, so a config names it exactly like a stock type and keeps
``default_scope='mmdet'`` (what mmdet's configs set):

* **mmdet's registries** (``mmdet.registry``): detector parts (``MODELS``: backbones, necks, the deployed detector),
  ``DATASETS``, ``TRANSFORMS``, ``HOOKS``, ``LOOPS``;
* **mmrazor's** (``mmrazor.registry.MODELS``): distillation algorithms and distillers, next to
  mmrazor's own, since mmrazor's algorithm base builds the distiller from there;
* **mmengine's root** ``OPTIM_WRAPPERS``: the bf16 optimizer wrapper, found from every scope.

:data:`KD_DET_TYPES` lists what is registered and where; ``tests/test_registry.py`` checks, in a
fresh process, that ``import kd_det`` alone registers exactly that (datasets included).

The registries below hold **no kd_det module**. They exist because mmengine tags every entry of
a config loaded through a ``kd_det::`` base with ``_scope_='kd_det'``; each is a child of mmdet's
registry of the same kind, so a lookup in the ``kd_det`` scope falls back to mmdet (and from
there to mmengine) and stock types resolve unchanged.
"""
from typing import Dict

from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

RUNNERS = Registry('runner', parent=mmdet_registry.RUNNERS, scope='kd_det')
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=mmdet_registry.RUNNER_CONSTRUCTORS,
                               scope='kd_det')
LOOPS = Registry('loop', parent=mmdet_registry.LOOPS, scope='kd_det')
HOOKS = Registry('hook', parent=mmdet_registry.HOOKS, scope='kd_det',
                 locations=['kd_det.engine.hooks'])
DATASETS = Registry('dataset', parent=mmdet_registry.DATASETS, scope='kd_det',
                    locations=['kd_det.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=mmdet_registry.DATA_SAMPLERS, scope='kd_det',
                         locations=['kd_det.datasets'])
TRANSFORMS = Registry('transform', parent=mmdet_registry.TRANSFORMS, scope='kd_det',
                      locations=['kd_det.datasets'])
MODELS = Registry('model', parent=mmdet_registry.MODELS, scope='kd_det',
                  locations=['kd_det.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=mmdet_registry.MODEL_WRAPPERS, scope='kd_det')
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=mmdet_registry.WEIGHT_INITIALIZERS,
                               scope='kd_det')
OPTIMIZERS = Registry('optimizer', parent=mmdet_registry.OPTIMIZERS, scope='kd_det')
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=mmdet_registry.OPTIM_WRAPPERS,
                          scope='kd_det', locations=['kd_det.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='kd_det')
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=mmdet_registry.PARAM_SCHEDULERS,
                            scope='kd_det')
METRICS = Registry('metric', parent=mmdet_registry.METRICS, scope='kd_det')
EVALUATOR = Registry('evaluator', parent=mmdet_registry.EVALUATOR, scope='kd_det')
TASK_UTILS = Registry('task util', parent=mmdet_registry.TASK_UTILS, scope='kd_det')
VISUALIZERS = Registry('visualizer', parent=mmdet_registry.VISUALIZERS, scope='kd_det')
VISBACKENDS = Registry('vis_backend', parent=mmdet_registry.VISBACKENDS, scope='kd_det')
LOG_PROCESSORS = Registry('log_processor', parent=mmdet_registry.LOG_PROCESSORS,
                          scope='kd_det')


# registry ('package.REGISTRY') -> kd_det type names registered there
KD_DET_TYPES: Dict[str, tuple] = {
    'mmdet.MODELS': ('DeployedDetector', 'SlimMobileNetV2', 'SparseBiFPN'),
    'mmdet.DATASETS': ('FaultTolerantDataset', 'PartiallyLabeledCocoDataset'),
    'mmdet.TRANSFORMS': ('SafeLoadImageFromFile', ),
    'mmdet.HOOKS': ('AtomicCheckpointHook', 'DataFaultHook', 'FisherPruningHook',
                    'GroupFisherExportHook', 'NanGuardHook', 'SparsityHook'),
    'mmdet.LOOPS': ('ResumableEpochBasedTrainLoop', ),
    'mmrazor.MODELS': ('DetectionDistill', 'SemiSupervisedDetectionDistill',
                       'DecoupledCosineDistiller', 'ConfidenceSoftLabelDistiller',
                       'FlopsTargetGroupFisherMutator'),
    'mmengine.OPTIM_WRAPPERS': ('BF16AutocastOptimWrapper', ),
}
