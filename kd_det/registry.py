"""Where kd_det's modules are registered: one rule.

Every kd_det module registers, under its own class name, in the registry of the OpenMMLab
package whose kind of module it is, so a config names it exactly like a stock type and keeps
``default_scope='mmdet'`` (what mmdet's configs set):

* **mmdet's registries** (``mmdet.registry``): detector parts (``MODELS``: backbones, necks),
  ``DATASETS``, ``TRANSFORMS``, ``HOOKS``, ``LOOPS``;
* **mmrazor's** (``mmrazor.registry.MODELS``): distillation algorithms and distillers, next to
  mmrazor's own, since mmrazor's algorithm base builds the distiller from there;
* **mmengine's root** ``OPTIM_WRAPPERS``: the bf16 optimizer wrapper, found from every scope.

kd_det defines no registry or scope of its own. ``import kd_det`` (or
``custom_imports=dict(imports=['kd_det'])`` in a config) imports every module that registers,
so nothing else needs importing. :data:`KD_DET_TYPES` lists what it registers and where;
``tests/test_registry.py`` checks that the list is complete and true.
"""
from typing import Dict

# registry ('package.REGISTRY') -> kd_det type names registered there
KD_DET_TYPES: Dict[str, tuple] = {
    'mmdet.MODELS': ('SlimMobileNetV2', 'SparseBiFPN'),
    'mmdet.DATASETS': ('FaultTolerantDataset', 'PartiallyLabeledCocoDataset'),
    'mmdet.TRANSFORMS': ('SafeLoadImageFromFile', ),
    'mmdet.HOOKS': ('AtomicCheckpointHook', 'DataFaultHook', 'NanGuardHook', 'SparsityHook'),
    'mmdet.LOOPS': ('ResumableEpochBasedTrainLoop', ),
    'mmrazor.MODELS': ('DetectionDistill', 'SemiSupervisedDetectionDistill',
                       'DecoupledCosineDistiller', 'ConfidenceSoftLabelDistiller'),
    'mmengine.OPTIM_WRAPPERS': ('BF16AutocastOptimWrapper', ),
}
