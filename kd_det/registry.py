"""kd_det's registry scope, a child of mmdet's.

Configs that inherit ``kd_det::...`` bases get ``default_scope='kd_det'`` from mmengine; every
lookup in this scope falls back to mmdet (and from there to mmengine), so stock mmdet types
resolve unchanged. kd_det's own detector-level modules register here; distillation algorithms
and distillers register in mmrazor's scope next to mmrazor's own.
"""
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
