"""Turn a distillation checkpoint into a plain mmdet student checkpoint + config.

A distillation run saves the whole algorithm (``architecture.*`` = student, ``teacher.*``,
``distiller.*`` connectors). Stock mmdet tools (``tools/test.py``, ``DetInferencer``) need only
the student with its own keys and its own config; this module writes both, and builds the
student detector of a (distillation) config for export, pruning and measurement.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config

from kd_det.apis.runner import load_config
from kd_det.models.utils.model_config import resolve_model_cfg
from kd_det.utils.checkpoint import (CheckpointMismatchError, load_checkpoint_file,
                                     mismatch_message, state_dict_mismatch, state_dict_of)

STUDENT_PREFIX = 'architecture.'


def student_state_dict(state: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Keep the student's weights of an algorithm state dict, without the wrapper prefix.

    A state dict that already is a plain detector's is returned unchanged.
    """
    if not any(k.startswith(STUDENT_PREFIX) for k in state):
        if any(k.startswith(('teacher.', 'distiller.')) for k in state):
            raise ValueError('checkpoint has teacher/distiller weights but no '
                             f'{STUDENT_PREFIX!r} (student) weights')
        return OrderedDict(state)
    return OrderedDict((k[len(STUDENT_PREFIX):], v) for k, v in state.items()
                       if k.startswith(STUDENT_PREFIX))


def student_config(cfg: Config) -> Config:
    """The student detector's config of a distillation config (the config itself otherwise).

    ``model`` becomes the student ``architecture``; data, schedule and evaluation settings are
    kept so the result runs with mmdet's tools as it is. An mmrazor *deploy sub-model*
    (``model.type`` ending in ``DeploySubModel``, e.g. ``mmrazor.GroupFisherDeploySubModel``:
    a pruned detector that GroupFisher's export writes) also has an ``architecture``, the
    unpruned one it cuts down; it is the detector already and is returned as it is.
    """
    model = cfg.model
    if 'architecture' not in model or str(model.get('type', '')).endswith('DeploySubModel'):
        return cfg
    architecture = resolve_model_cfg(model.architecture)
    plain = Config(cfg.to_dict())
    plain.model = architecture
    plain.model.pop('_scope_', None)
    plain.default_scope = 'mmdet'
    return plain


def build_student(config: str, checkpoint: Optional[str] = None,
                  cfg_options: Optional[Dict] = None) -> torch.nn.Module:
    """The (student) detector of ``config``, with ``checkpoint``'s weights if given."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = student_config(load_config(config, cfg_options=_without_teacher(cfg_options)))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_student_weights(model, checkpoint)
    return model.eval()


def load_student_weights(model: torch.nn.Module, checkpoint: str) -> torch.nn.Module:
    """Load ``checkpoint`` (a plain detector's, or a distillation run's: its student part) into
    ``model``, strictly (every key must match), under ``weights_only``."""
    state = student_state_dict(state_dict_of(load_checkpoint_file(checkpoint, 'cpu')))
    model.load_state_dict(state, strict=True)
    return model


def _without_teacher(cfg_options: Optional[Dict]) -> Dict:
    return {k: v for k, v in (cfg_options or {}).items() if not k.startswith('model.teacher')}


def check_student_weights(plain_cfg: Config, state: Dict[str, torch.Tensor],
                          checkpoint: str) -> None:
    """The extracted weights fit the student detector of the config, key for key and shape for
    shape (a teacher's or another run's checkpoint would otherwise be written as the student).

    Raises:
        CheckpointMismatchError: naming the differences and the likely cause.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(plain_cfg.model)
    missing, unexpected, shape_errors = state_dict_mismatch(model, state)
    if missing or unexpected or shape_errors:
        raise CheckpointMismatchError(
            mismatch_message(model, checkpoint, 'student', missing, unexpected, shape_errors)
            + '\n  Pass the checkpoint of a run of this distillation config (e.g. '
            'work_dirs/<config>/epoch_N.pth); nothing was written.')


def extract_student(config: str, checkpoint: str, out_dir: str) -> Tuple[str, str]:
    """Write ``student.py`` and ``student.pth`` (with the original ``meta``) into ``out_dir``.

    Raises:
        CheckpointMismatchError: the checkpoint's student weights do not fit the config's
            student (nothing is written then).
    """
    cfg = Config.fromfile(config)
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu', key='CHECKPOINT')
    state = student_state_dict(state_dict_of(ckpt))
    meta = dict(ckpt.get('meta', {})) if isinstance(ckpt, dict) else {}
    meta.pop('cfg', None)  # the config text belongs to the algorithm, not the student
    plain_cfg = student_config(cfg)
    check_student_weights(plain_cfg, state, checkpoint)
    out_cfg = osp.join(out_dir, 'student.py')
    out_ckpt = osp.join(out_dir, 'student.pth')
    os.makedirs(out_dir, exist_ok=True)
    plain_cfg.dump(out_cfg)
    tmp = out_ckpt + '.tmp'
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, out_ckpt)
    return out_cfg, out_ckpt
