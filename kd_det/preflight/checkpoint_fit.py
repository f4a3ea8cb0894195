"""Checks that the checkpoint a run starts from fits the built model (and, for ``--resume``,
the config that wrote it), before a single step runs.

mmengine loads ``load_from``, ``--resume`` and the checkpoint of ``tools/test.py`` with
``strict=False``: a checkpoint of another network logs hundreds of size mismatches and the run
then trains or evaluates random weights and exits 0. Here:

* ``tools/test.py`` and ``--resume``: every key and shape must match.
* ``load_from`` (fine-tuning): the same, except that a classification layer whose output size
  differs (a checkpoint trained on other classes) is reported and left at its initial weights,
  as mmdet users expect when they fine-tune a COCO model; a distillation model's teacher keys
  may be absent (the teacher comes from ``model.teacher_ckpt``).

A partial load on purpose passes with ``preflight = dict(skip=['checkpoints'])``.
"""
import logging
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from kd_det.utils.checkpoint import (CheckpointMismatchError, classifier_only,
                                     load_checkpoint_file, mismatch_message, state_dict_mismatch,
                                     state_dict_of)

TEACHER_PREFIX = 'teacher.'
# settings that only say where or how this run happens, not what it trains
RUN_LOCAL_KEYS = ('work_dir', 'experiment_name', 'load_from', 'resume', 'launcher',
                  'default_hooks.logger',
                  'default_hooks.checkpoint', 'visualizer', 'log_processor', 'env_cfg',
                  'train_dataloader.num_workers', 'val_dataloader.num_workers',
                  'test_dataloader.num_workers', 'train_dataloader.persistent_workers',
                  'val_dataloader.persistent_workers', 'test_dataloader.persistent_workers',
                  'custom_hooks', 'preflight')


def _role(cfg: Config, mode: str) -> str:
    if mode == 'test':
        return 'test'
    return '--resume' if cfg.get('resume') else 'load_from'


def check_checkpoint_fits_model(cfg: Config, model: nn.Module, mode: str = 'train') -> None:
    """The checkpoint in ``cfg.load_from`` fits ``model`` (see the module docstring).

    Raises:
        CheckpointMismatchError: naming the keys that differ, the likely cause and the fix.
    """
    path = cfg.get('load_from')
    skip = set((cfg.get('preflight') or {}).get('skip', ()))
    if not path or 'checkpoints' in skip:
        return
    role = _role(cfg, mode)
    # mapped, not read: the runner loads the file for real right after this check
    checkpoint = load_checkpoint_file(path, map_location='cpu', key=role, mmap=True)
    model = model.module if is_model_wrapper(model) else model
    missing, unexpected, shape_errors = state_dict_mismatch(model, state_dict_of(checkpoint))
    fine_tuning = role == 'load_from'
    if fine_tuning:
        missing = [k for k in missing if not k.startswith(TEACHER_PREFIX)]
        if classifier_only(shape_errors):
            keys = ', '.join(key for key, _, _ in shape_errors)
            print_log(f'load_from {path!r}: {keys} differ in output size (the checkpoint was '
                      'trained on other classes); these layers keep their initial weights and '
                      'every other layer is loaded', logger='current', level=logging.WARNING)
            shape_errors = []
    if not (missing or unexpected or shape_errors):
        if role == '--resume':
            warn_config_changes(cfg, checkpoint)
        return
    message = mismatch_message(model, path, role, missing, unexpected, shape_errors)
    what = {'test': 'Evaluating it would score random weights',
            '--resume': 'It was not written by this config; resume with the config that '
                        'wrote it, or start a new run',
            'load_from': 'Training from it would start from random weights'}[role]
    raise CheckpointMismatchError(
        f'{message}\n  {what}. If a partial load is intended, set '
        "preflight = dict(skip=['checkpoints']) in the config.")


def _flatten(node, prefix: str = '') -> Dict[str, object]:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f'{prefix}{key}.'))
        return out
    if isinstance(node, (list, tuple)) and any(isinstance(v, dict) for v in node):
        out = {}
        for index, value in enumerate(node):
            out.update(_flatten(value, f'{prefix}{index}.'))
        return out
    return {prefix[:-1]: node}


def config_changes(old: Config, new: Config) -> List[str]:
    """``'key: old -> new'`` for every setting that differs, run-local settings left out."""
    before, after = _flatten(old.to_dict()), _flatten(new.to_dict())
    changes = []
    for key in sorted(set(before) | set(after)):
        if key.startswith(RUN_LOCAL_KEYS) or before.get(key) == after.get(key):
            continue
        changes.append(f'{key}: {before.get(key, "(unset)")!r} -> {after.get(key, "(unset)")!r}')
    return changes


def warn_config_changes(cfg: Config, checkpoint: dict, limit: int = 8) -> Optional[List[str]]:
    """Warn when ``--resume`` runs another config than the one that wrote the checkpoint.

    mmengine restores the optimizer, its learning rate and the schedulers from the checkpoint,
    so a changed learning rate or schedule is silently not applied.
    """
    text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(checkpoint, dict) else None
    if not isinstance(text, str):
        return None
    try:
        old = Config.fromstring(text, '.py')
    except Exception:  # a config mmengine cannot re-read (e.g. lambdas): nothing to compare
        return None
    changes = config_changes(old, cfg)
    if changes:
        more = f' (+{len(changes) - limit} more)' if len(changes) > limit else ''
        print_log('--resume: the config differs from the one that wrote the checkpoint: '
                  + '; '.join(changes[:limit]) + more + '. The optimizer state (learning rate '
                  'included) and the schedulers come from the checkpoint, so changes to them '
                  'do not apply; to train with the new settings, start a new run from the '
                  'checkpoint with load_from instead of --resume', logger='current',
                  level=logging.WARNING)
    return changes


def explain_optimizer_mismatch(runner) -> None:
    """Make ``runner.resume`` name the cause when the optimizer state does not fit.

    With the same model but another optimizer layout (``paramwise_cfg``, another optimizer
    type), torch raises a bare ``ValueError: loaded state dict has a different number of
    parameter groups`` deep inside mmengine's resume.
    """
    resume = runner.resume

    def resume_explained(filename, *args, **kwargs):
        try:
            return resume(filename, *args, **kwargs)
        except ValueError as err:
            if 'parameter group' not in str(err) and 'param_groups' not in str(err):
                raise
            raise CheckpointMismatchError(
                f'--resume checkpoint {filename!r} holds an optimizer state with another '
                f'layout than this config builds ({err}): optim_wrapper (its optimizer type or '
                'paramwise_cfg) changed since the checkpoint was written. Resume with the '
                'config that wrote it, or start a new run from it with load_from') from None

    runner.resume = resume_explained
