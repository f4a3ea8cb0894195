"""The one checkpoint loader of kd_det: torch's ``weights_only=True`` protection, clear errors.

Every checkpoint kd_det or mmengine reads from local disk (``load_from``, ``--resume``,
``teacher_ckpt``, pruning, export) comes through :func:`load_checkpoint_file`: ``kd_det.compat``
registers it as mmengine's loader for local paths. mmengine's own checkpoints load because
``kd_det.compat`` allow-lists the few plain data classes they contain; a checkpoint that pickles
anything else (in particular code: ``os.system``, ``eval``, ``getattr`` ...) is refused before any
of it runs.
"""
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint carries pickled objects outside the allow-list (possibly code)."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model they are loaded into."""


URL_PREFIXES = ('http://', 'https://')


def is_url(filename) -> bool:
    return str(filename).startswith(URL_PREFIXES)


def cached_download(url: str, key: Optional[str] = None) -> str:
    """The local copy of the checkpoint at ``url``, downloaded on first use.

    Like mmengine and torchvision, the file goes to torch's hub cache
    (``$TORCH_HOME/hub/checkpoints/<file name>``, by default ``~/.cache/torch/...``), so a
    checkpoint mmdet or mmrazor name by URL is fetched once and then loaded from disk.

    Raises:
        FileNotFoundError: the download failed (no network, wrong URL); the message says where
            to put the file by hand.
    """
    from urllib.parse import urlparse

    from torch.hub import download_url_to_file, get_dir
    cache_dir = osp.join(get_dir(), 'checkpoints')
    cached = osp.join(cache_dir, osp.basename(urlparse(url).path) or 'checkpoint.pth')
    if osp.isfile(cached):
        return cached
    os.makedirs(cache_dir, exist_ok=True)
    try:
        download_url_to_file(url, cached, progress=True)
    except Exception as err:  # URLError, HTTPError, timeouts, a full disk ...
        raise FileNotFoundError(
            f'checkpoint {url!r}{_named_by(key)} could not be downloaded ({_first_line(err)}). '
            f'Without network access, download it on another machine and copy it to {cached} '
            f'(where kd_det looks first), or set {key or "the setting"} to a local file'
        ) from None
    return cached


def _named_by(key: Optional[str]) -> str:
    return f' ({key})' if key else ''


def local_checkpoint_file(filename, key: Optional[str] = None) -> str:
    """``filename`` as a readable local file: ``~`` expanded, a URL downloaded once.

    ``key`` names the setting the path came from (``model.teacher_ckpt``, ``load_from``,
    ``--resume``) so errors say what to fix.

    Raises:
        FileNotFoundError: no such file, a directory, or a failed download.
        PermissionError: the file cannot be read.
    """
    if is_url(filename):
        return cached_download(str(filename), key)
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):
        inside = latest_complete_checkpoint(filename)
        hint = (f'; the newest complete checkpoint in it is {inside}' if inside else
                '; it holds no complete checkpoint')
        raise FileNotFoundError(f'checkpoint {filename!r}{_named_by(key)} is a directory, not a '
                                f'checkpoint file{hint}. Name the .pth file itself')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r}{_named_by(key)} does not exist' +
                                ('' if key else '; check the path'))
    if not os.access(filename, os.R_OK):
        raise PermissionError(f'checkpoint {filename!r}{_named_by(key)} exists but cannot be '
                              'read; check its file permissions')
    return filename


def load_checkpoint_file(filename: str, map_location=None, key: Optional[str] = None,
                         mmap: bool = False) -> dict:
    """Load a checkpoint (local path or URL) with ``weights_only=True``.

    Args:
        filename: a path, or an ``http(s)://`` URL (downloaded once, see
            :func:`cached_download`).
        map_location: as for ``torch.load``.
        key: the setting ``filename`` came from, named in errors.
        mmap: map the tensors from the file instead of reading them (for checks that look at
            keys and shapes before the runner loads the checkpoint for real); files in torch's
            legacy format, which cannot be mapped, are read.

    Raises:
        FileNotFoundError: no such file (or a directory, or a failed download).
        PermissionError: the file cannot be read.
        UnsafeCheckpointError: the file pickles objects that are not plain data.
    """
    filename = local_checkpoint_file(filename, key)
    try:
        if mmap:
            try:
                return torch.load(filename, map_location=map_location, weights_only=True,
                                  mmap=True)
            except RuntimeError as err:
                if 'mmap' not in str(err):
                    raise
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(_unsafe_message(filename, err)) from None
    except (EOFError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and 'zip' not in str(err).lower() and \
                'file' not in str(err).lower():
            raise
        raise RuntimeError(f'checkpoint {filename!r} is truncated or not a torch checkpoint '
                           f'({_first_line(err)}); was it copied completely?') from None


def _unsafe_message(filename: str, err: BaseException) -> str:
    found = re.search(r'[Uu]nsupported (?:global: )?GLOBAL (\S+)', str(err))
    culprit = f' (it references {found.group(1)})' if found else ''
    return (f'refused to load {filename!r}: it contains pickled objects that are not plain '
            f'weights and could run code when loaded{culprit}. kd_det keeps torch\'s '
            'weights_only=True protection. If you trust the file, keep only its weights once: '
            'ckpt = torch.load(path, weights_only=False); torch.save({"state_dict": '
            'ckpt["state_dict"], "meta": ckpt.get("meta", {})}, new_path)')


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def state_dict_of(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint dict (``state_dict`` key or the dict itself), with any
    ``module.`` prefix from DataParallel/DDP removed."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError('checkpoint holds no state_dict')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state.items())


def _show(keys: Iterable[str], limit: int = 5) -> str:
    keys = sorted(keys)
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def _guess_cause(missing: List[str], unexpected: List[str],
                 shape_errors: List[Tuple[str, tuple, tuple]]) -> str:
    """The most likely reason a checkpoint does not fit, from its key and shape differences.

    ``shape_errors`` are ``(key, checkpoint shape, model shape)``.
    """
    if any(k.startswith(('architecture.', 'teacher.', 'student.')) for k in unexpected):
        return ('it looks like a whole distillation checkpoint; pass the student extracted '
                'with tools/extract_student.py (or the teacher trained on its own)')
    if missing and all(k.startswith(('architecture.', 'teacher.', 'distiller.'))
                       for k in missing) and not any(
                           k.startswith(('architecture.', 'teacher.')) for k in unexpected):
        return ('a plain detector checkpoint for a distillation config (its keys lack the '
                '"architecture." prefix). To start the student from it, set '
                "model.architecture.init_cfg=dict(type='Pretrained', checkpoint=PATH); the "
                'teacher is model.teacher_ckpt')
    prefixes_missing = {k.split('.')[0] for k in missing}
    prefixes_unexpected = {k.split('.')[0] for k in unexpected}
    if 'roi_head' in prefixes_unexpected and 'bbox_head' in prefixes_missing:
        return 'did you pass a two-stage (e.g. Faster R-CNN) checkpoint to a one-stage teacher?'
    if 'bbox_head' in prefixes_unexpected and 'roi_head' in prefixes_missing:
        return 'did you pass a one-stage checkpoint to a two-stage teacher?'
    # only the classifier's output size differs: trained on another number of classes (when
    # hidden layers differ too, e.g. cls_convs, the network width differs instead)
    if classifier_only(shape_errors):
        return ('the classification layers differ in shape: the checkpoint was trained on a '
                'different number of classes')
    if shape_errors and not missing and not unexpected:
        return ('same layers, different widths: the checkpoint was trained with other channel '
                'numbers (backbone widen_factor/depth, neck out_channels, head '
                'feat_channels); did you pass the student checkpoint, or the teacher of '
                'another config?')
    if prefixes_missing & {'backbone'} or any(k.startswith('backbone') for k in unexpected):
        return 'the backbone differs: check the backbone type/depth/width in the config'
    return 'the config does not describe the network this checkpoint was trained with'


def state_dict_mismatch(model: nn.Module, state: Dict[str, torch.Tensor]
                        ) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """How ``state`` fails to fit ``model``: ``(missing, unexpected, shape_errors)``, the last
    as ``(key, checkpoint shape, model shape)``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape_errors = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
                    if k in state and hasattr(state[k], 'shape') and state[k].shape != v.shape]
    return missing, unexpected, shape_errors


def mismatch_message(model: nn.Module, source: str, role: str, missing: List[str],
                     unexpected: List[str], shape_errors: List[Tuple[str, tuple, tuple]]) -> str:
    """The error text for a checkpoint that does not fit: what differs and the likely cause."""
    parts = [f'{role} checkpoint {source!r} does not match the {role} config '
             f'({type(model).__name__}):']
    if missing:
        parts.append(f'  missing keys ({len(missing)}): {_show(missing)}')
    if unexpected:
        parts.append(f'  unexpected keys ({len(unexpected)}): {_show(unexpected)}')
    if shape_errors:
        shapes = [f'{k}: checkpoint {ckpt} vs model {model_shape}'
                  for k, ckpt, model_shape in shape_errors]
        parts.append(f'  shape mismatches ({len(shape_errors)}): {_show(shapes, 3)}')
    parts.append(f'  likely cause: {_guess_cause(missing, unexpected, shape_errors)}')
    return '\n'.join(parts)


def classifier_only(shape_errors: List[Tuple[str, tuple, tuple]]) -> bool:
    """Only the classification output layers differ, in their output size (other classes)."""
    return bool(shape_errors) and all(
        'cls' in key.rsplit('.', 2)[-2] and 'convs' not in key and ckpt[1:] == own[1:]
        for key, ckpt, own in shape_errors)


def load_state_dict_strict(model: nn.Module, checkpoint_path: str, role: str = 'model') -> dict:
    """Load ``checkpoint_path`` into ``model``, requiring every key and shape to match.

    Raises:
        CheckpointMismatchError: naming missing, unexpected and mis-shaped keys and the likely
            cause.

    Returns:
        The loaded checkpoint dict (for its ``meta``).
    """
    checkpoint = load_checkpoint_file(checkpoint_path, map_location='cpu')
    _load_strict(model, state_dict_of(checkpoint), checkpoint_path, role)
    return checkpoint


def _load_strict(model: nn.Module, state: Dict[str, torch.Tensor], checkpoint_path: str,
                 role: str) -> None:
    missing, unexpected, shape_errors = state_dict_mismatch(model, state)
    if missing or unexpected or shape_errors:
        raise CheckpointMismatchError(mismatch_message(model, checkpoint_path, role, missing,
                                                       unexpected, shape_errors))
    model.load_state_dict(state, strict=True)


DISTILLED_STUDENT_PREFIX = 'architecture.'


def load_teacher_checkpoint(teacher: nn.Module, checkpoint_path: Optional[str]) -> dict:
    """Strictly load a teacher checkpoint (see :func:`load_state_dict_strict`).

    The checkpoint of a *distillation* run (keys ``architecture.*``, ``teacher.*``, ...) gives
    its student: iterative distillation, where last round's student teaches the next one.
    """
    checkpoint = load_checkpoint_file(checkpoint_path, map_location='cpu')
    state = state_dict_of(checkpoint)
    if is_distillation_state(state):
        state = teacher_state_dict(state)
        from mmengine.logging import print_log
        print_log(f'teacher_ckpt {checkpoint_path} is a distillation checkpoint: the teacher is '
                  'its student (architecture.*)', logger='current')
    _load_strict(teacher, state, checkpoint_path, 'teacher')
    return checkpoint


def is_distillation_state(state: Dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` is a distillation run's (its student's keys are ``architecture.*``)."""
    return any(key.startswith(DISTILLED_STUDENT_PREFIX) for key in state)


def teacher_state_dict(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` itself, or the student's weights (prefix removed) if it is a distillation
    checkpoint's."""
    if not is_distillation_state(state):
        return state
    return {key[len(DISTILLED_STUDENT_PREFIX):]: value for key, value in state.items()
            if key.startswith(DISTILLED_STUDENT_PREFIX)}


def is_complete_checkpoint(filename: str) -> bool:
    """Whether ``filename`` is a whole torch checkpoint (zip format: its end record is intact).

    A file cut short while being written (a killed job, a full disk) fails this test.
    """
    import zipfile
    return osp.isfile(filename) and zipfile.is_zipfile(filename)


def latest_complete_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should continue from in ``work_dir``, or None.

    mmengine's ``last_checkpoint`` pointer names it; when the pointer is missing or empty, or
    names a file that is gone or incomplete, the newest complete ``*.pth`` in ``work_dir``
    is used instead (and the skipped candidates are reported by the caller's log).
    """
    candidates: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:  # mmengine writes it relative to the working directory of the run
            candidates.append(named if osp.isabs(named) or osp.exists(named) else
                              osp.join(work_dir, osp.basename(named)))
    if osp.isdir(work_dir):
        found = [osp.join(work_dir, name) for name in os.listdir(work_dir)
                 if name.endswith('.pth')]
        candidates += sorted(found, key=osp.getmtime, reverse=True)
    for candidate in candidates:
        if is_complete_checkpoint(candidate):
            return candidate
    return None
