"""kd_det: knowledge distillation, a sparse BiFPN neck and pruning for MMDetection detectors.

Importing kd_det (directly or through ``custom_imports=dict(imports=['kd_det'])``) adapts
mmrazor/mmengine to today's torch (:mod:`kd_det.compat`) and registers every kd_det module in
mmdet's, mmrazor's and mmengine's registries (the rule: :mod:`kd_det.registry`), datasets
included. Nothing else happens at import.
"""
from kd_det import compat  # noqa: F401  (first: mmrazor cannot be imported without it)
from kd_det import datasets, deploy, engine, models, pruning, registry  # noqa: F401,E402

__version__ = '0.1.0'
