"""Pre-flight checks ``checkpoints`` and ``teacher``: ``--resume`` resolution, the
``load_from``/``--resume`` path, and the teacher checkpoint (readable, safe, and fitting the
teacher config)."""
import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from kd_det.preflight.errors import PreflightError
from kd_det.utils.checkpoint import (latest_complete_checkpoint, load_checkpoint_file,
                                     load_state_dict_strict, local_checkpoint_file)


def resolve_resume_checkpoint(cfg: Config) -> None:
    """``resume=True`` without a path: the newest *complete* checkpoint of the work dir.

    mmengine follows ``last_checkpoint`` blindly; after a crash it may be empty or name a file
    that was cut short. Sets ``cfg.load_from`` (None starts from scratch, as mmengine does).
    """
    if not cfg.get('resume') or cfg.get('load_from'):
        return
    work_dir = cfg.get('work_dir')
    latest = latest_complete_checkpoint(work_dir) if work_dir else None
    pointer = osp.join(work_dir or '', 'last_checkpoint')
    named = open(pointer).read().strip() if osp.isfile(pointer) else ''
    if latest is None:
        cut = [name for name in sorted(os.listdir(work_dir)) if name.endswith('.pth')] \
            if work_dir and osp.isdir(work_dir) else []
        if cut:
            raise PreflightError(
                f'--resume: {work_dir} has checkpoints ({", ".join(cut[:5])}) but none is '
                'complete (cut short while being written, or not in torch\'s zip format); '
                'there is nothing to resume from. '
                'Pass --resume PATH to a complete checkpoint, or move them away to start over '
                "(default_hooks.checkpoint.type='AtomicCheckpointHook' prevents this)")
    elif named and osp.abspath(named) != osp.abspath(latest):
        print_log(f'last_checkpoint names {named!r}, which is missing or incomplete; '
                  f'resuming from {latest} instead', logger='current', level=logging.WARNING)
    cfg.load_from = latest


def check_resume_and_load_from(cfg: Config, mode: str = 'train') -> None:
    """``load_from`` / a ``--resume`` path / the checkpoint to test name a readable file (a
    URL is downloaded into torch's hub cache here, once)."""
    path = cfg.get('load_from')
    if not path:
        return
    what = ('the checkpoint to test' if mode == 'test' else
            '--resume' if cfg.get('resume') else 'load_from')
    try:
        local_checkpoint_file(path, key=what)
    except (FileNotFoundError, PermissionError) as err:
        raise PreflightError(str(err)) from None


def _teacher_ckpt(cfg: Config) -> Optional[str]:
    model = cfg.get('model') or {}
    return model.get('teacher_ckpt') if isinstance(model, dict) else None


def check_teacher_checkpoint(cfg: Config) -> Optional[dict]:
    """``model.teacher_ckpt`` exists, is readable and safe; returns the loaded checkpoint.

    Raises :class:`kd_det.utils.checkpoint.UnsafeCheckpointError` (unchanged) for a file that
    pickles code.
    """
    path = _teacher_ckpt(cfg)
    model = cfg.get('model') or {}
    if not path:
        if isinstance(model, dict) and 'teacher' in model:
            print_log('model.teacher_ckpt is not set: the teacher starts from random weights '
                      'and teaches noise. Set it to the trained teacher checkpoint.',
                      logger='current', level=logging.WARNING)
        return None
    fix = ('Train the teacher first (python tools/train.py <teacher config>) or point '
           'model.teacher_ckpt at its checkpoint (--cfg-options model.teacher_ckpt=PATH)')
    try:
        local_checkpoint_file(path, key='model.teacher_ckpt')
    except FileNotFoundError as err:
        raise PreflightError(f'teacher {err}' + ('' if osp.isdir(path) else f'. {fix}')) \
            from None
    except PermissionError as err:
        raise PreflightError(f'teacher {err}') from None
    try:
        return load_checkpoint_file(path, map_location='cpu')
    except RuntimeError as err:
        from kd_det.utils.checkpoint import UnsafeCheckpointError
        if isinstance(err, UnsafeCheckpointError):
            raise
        raise PreflightError(f'teacher checkpoint {path!r} (model.teacher_ckpt) cannot be '
                             f'loaded: {err}') from None


def _algorithm_class(model: dict):
    from mmrazor.registry import MODELS
    try:
        return MODELS.get(str(model.get('type', '')).split('.')[-1])
    except Exception:
        return None


def check_teacher_matches_config(cfg: Config) -> None:
    """The teacher checkpoint fits the teacher config, key for key.

    ``DetectionDistill`` checks this itself when it is built; mmrazor's algorithms load
    ``teacher_ckpt`` non-strictly (a wrong file only logs a warning and the teacher stays
    partly random), so for them the teacher is built here and loaded strictly.
    """
    path = _teacher_ckpt(cfg)
    model = cfg.get('model')
    if not path or not isinstance(model, dict) or 'teacher' not in model:
        return
    from kd_det.models.algorithms.detection_distill import DetectionDistill
    algorithm = _algorithm_class(model)
    if algorithm is not None and issubclass(algorithm, DetectionDistill):
        return
    from mmrazor.registry import MODELS

    from kd_det.models.utils.model_config import resolve_model_cfg
    teacher = MODELS.build(resolve_model_cfg(model['teacher']))
    load_state_dict_strict(teacher, path, role='teacher')
