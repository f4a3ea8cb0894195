"""Pre-flight checks: configuration mistakes fail in seconds, before a long run starts.

``kd_det.apis.runner`` (so ``tools/train.py``, ``tools/test.py``, the demo and the benchmark)
runs :func:`check_config` on the merged config before the Runner is built and
:func:`check_built_model` on the built model before training, then
:func:`~kd_det.preflight.checkpoint_fit.check_checkpoint_fits_model`. Each check is one function
that raises :class:`PreflightError` whose message names the config entry and what to change.
One module per check family: :mod:`.config_types`, :mod:`.datasets`, :mod:`.checkpoints`,
:mod:`.classes`, :mod:`.dry_run`, :mod:`.checkpoint_fit`.

A config may switch checks off by name (e.g. for a custom dataset format)::

    preflight = dict(skip=['types', 'datasets'])

Check names: ``types``, ``datasets``, ``checkpoints``, ``teacher``, ``classes``, ``shapes``.
"""
from typing import Optional, Set

from mmengine.config import Config
from torch import nn

from kd_det.preflight.checkpoint_fit import (check_checkpoint_fits_model, config_changes,
                                             explain_optimizer_mismatch, warn_config_changes)
from kd_det.preflight.checkpoints import (check_resume_and_load_from, check_teacher_checkpoint,
                                          check_teacher_matches_config,
                                          resolve_resume_checkpoint)
from kd_det.preflight.classes import check_class_consistency
from kd_det.preflight.config_types import check_registered_types, registered_names
from kd_det.preflight.datasets import (check_coco_dataset, check_datasets, check_image_files,
                                       dataset_classes, load_coco_json)
from kd_det.preflight.dry_run import check_distill_shapes, dummy_detection_batch
from kd_det.preflight.errors import DistillShapeError, PreflightError

__all__ = [
    'CHECKS', 'check_config', 'check_built_model', 'PreflightError', 'DistillShapeError',
    'registered_names', 'check_registered_types', 'dataset_classes', 'load_coco_json',
    'check_image_files', 'check_coco_dataset', 'check_datasets', 'resolve_resume_checkpoint',
    'check_resume_and_load_from', 'check_teacher_checkpoint', 'check_teacher_matches_config',
    'check_class_consistency', 'dummy_detection_batch', 'check_distill_shapes',
    'check_checkpoint_fits_model', 'config_changes', 'warn_config_changes',
    'explain_optimizer_mismatch'
]

CHECKS = ('types', 'datasets', 'checkpoints', 'teacher', 'classes', 'shapes')


def _skipped(cfg: Config) -> Set[str]:
    skip = set((cfg.get('preflight') or {}).get('skip', ()))
    unknown = skip - set(CHECKS)
    if unknown:
        raise PreflightError(f'preflight.skip has unknown checks {sorted(unknown)}; '
                             f'choose from {list(CHECKS)}')
    return skip


def check_config(cfg: Config, mode: str = 'train') -> Optional[dict]:
    """Run every static check on ``cfg`` (``mode``: ``'train'`` or ``'test'``).

    Returns:
        The teacher checkpoint (weights and meta) if one was read, else None.
    """
    skip = _skipped(cfg)
    if 'types' not in skip:
        check_registered_types(cfg)
    if 'datasets' not in skip:
        check_datasets(cfg, mode)
    if 'checkpoints' not in skip:
        check_resume_and_load_from(cfg, mode)
    if mode != 'train':
        return None
    teacher_checkpoint = None
    if 'teacher' not in skip:
        teacher_checkpoint = check_teacher_checkpoint(cfg)
    if 'classes' not in skip:
        check_class_consistency(cfg, teacher_checkpoint)
    if 'teacher' not in skip:
        check_teacher_matches_config(cfg)
    return teacher_checkpoint


def check_built_model(cfg: Config, model: nn.Module) -> None:
    """Checks that need the built model (the distillation dry run)."""
    if 'shapes' not in _skipped(cfg):
        check_distill_shapes(model)
