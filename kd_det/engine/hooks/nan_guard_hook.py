"""Stops a NaN/Inf loss from reaching the weights: skip the step, or save and stop."""
import logging
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from kd_det.engine.hooks.atomic_checkpoint_hook import ATOMIC_BACKEND_ARGS

SKIPPED_STEPS = 'nan_guard/skipped_steps'
ACTIONS = ('skip', 'stop')


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss was NaN or infinite."""


def non_finite_losses(losses: Dict[str, object]) -> List[str]:
    """Names of the loss terms in ``losses`` that are NaN or infinite.

    Only terms that ``BaseModel.parse_losses`` adds to the total (names containing ``loss``)
    count; logged-only values such as gate ratios do not reach the gradient.
    """
    names, flags = [], []
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        tensors = [v.detach() for v in values if isinstance(v, torch.Tensor)]
        if tensors:
            names.append(name)
            flags.append(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
    if not names:
        return []
    bad = ~torch.stack(flags)
    if get_world_size() > 1:  # every rank must take the same decision, or DDP hangs
        bad = bad.int()
        all_reduce(bad)
    return [name for name, is_bad in zip(names, bad.tolist()) if is_bad]


def _describe(losses: Dict[str, object], names: List[str]) -> str:
    parts = []
    for name in names:
        value = losses[name]
        value = value if isinstance(value, torch.Tensor) else torch.stack(
            [v.detach().float().mean() for v in value])
        parts.append(f'{name}={value.detach().float().mean().item()}')
    return ', '.join(parts)


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Checks every loss term for NaN/Inf before backward, at the step it happens.

    A NaN in one distillation term (or in the teacher's outputs, which every distill term then
    inherits) would otherwise be summed into the total loss, back-propagated and written into
    every weight by the optimizer, leaving hours of training unrecoverable. The hook sees the
    individual terms (the dict the model's ``loss()`` returns, captured with a forward hook on
    the model) and intercepts ``optim_wrapper.update_params`` so nothing is back-propagated
    for a bad step. Works with any optimizer wrapper (``OptimWrapper``,
    ``BF16AutocastOptimWrapper``, ``AmpOptimWrapper``) and in distributed runs (ranks agree).

    Actions, chosen by ``action``:

    * ``'skip'`` (default): no backward, no optimizer step for this iteration; a warning names
      the loss terms and the iteration; ``nan_guard/skipped_steps`` counts them in the log.
      After more than ``max_skips`` skipped steps it stops as below.
    * ``'stop'``: save the weights from before this step to ``nan_stop_iter_<N>.pth`` in the
      work dir (written atomically) and raise :class:`NonFiniteLossError`.

    The counter is kept in the message hub, so it is saved in checkpoints and continues after
    ``--resume``.

    Args:
        action (str): ``'skip'`` or ``'stop'``. Defaults to ``'skip'``.
        max_skips (int): most steps to skip in a whole run before stopping. Defaults to 10.
        save_checkpoint (bool): save the pre-fault weights when stopping. Defaults to True.
    """
    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'skip', max_skips: int = 10, save_checkpoint: bool = True):
        if action not in ACTIONS:
            raise ValueError(f'action must be one of {ACTIONS}, got {action!r}')
        if max_skips < 0:
            raise ValueError(f'max_skips must be >= 0, got {max_skips}')
        self.action = action
        self.max_skips = max_skips
        self.save_checkpoint = save_checkpoint
        self._losses: Optional[Dict[str, object]] = None
        self._handle = None

    def before_train(self, runner) -> None:
        self._handle = runner.model.register_forward_hook(self._capture_losses)
        optim_wrapper = runner.optim_wrapper
        update_params = optim_wrapper.update_params

        def guarded_update_params(loss, *args, **kwargs):
            losses, self._losses = self._losses, None
            bad = non_finite_losses(dict(losses or {}, loss=loss))
            if not bad:
                return update_params(loss, *args, **kwargs)
            self._on_non_finite(runner, optim_wrapper, losses or {}, loss, bad)

        optim_wrapper.update_params = guarded_update_params
        if runner.message_hub.get_info(SKIPPED_STEPS) is None:
            runner.message_hub.update_info(SKIPPED_STEPS, 0)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        runner.optim_wrapper.__dict__.pop('update_params', None)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        runner.message_hub.update_scalar(f'train/{SKIPPED_STEPS}',
                                         runner.message_hub.get_info(SKIPPED_STEPS) or 0)

    def _capture_losses(self, module, args, output) -> None:
        if isinstance(output, dict):  # mode='loss'; predictions are lists
            self._losses = output

    def _on_non_finite(self, runner, optim_wrapper, losses: dict, loss, bad: List[str]) -> None:
        optim_wrapper.zero_grad()
        terms = _describe(dict(losses, loss=loss), [n for n in bad if n != 'loss'] or bad)
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        hub = runner.message_hub
        skipped = (hub.get_info(SKIPPED_STEPS) or 0) + (self.action == 'skip')
        hub.update_info(SKIPPED_STEPS, skipped)
        fix = ('Lower the learning rate or the distillation loss weights, or check the data '
               'of this batch and the teacher checkpoint.')
        if self.action == 'skip' and skipped <= self.max_skips:
            print_log(f'non-finite loss at {where}: {terms}. Skipped this step (no update); '
                      f'{skipped}/{self.max_skips} steps skipped so far (NanGuardHook '
                      f'max_skips). {fix}', logger='current', level=logging.WARNING)
            return
        reason = (f'non-finite loss at {where}: {terms}' if self.action == 'stop' else
                  f'non-finite loss at {where}: {terms}; more than max_skips={self.max_skips} '
                  'steps had non-finite losses')
        saved = ''
        if self.save_checkpoint:
            filename = f'nan_stop_iter_{runner.iter}.pth'
            # the weights are still those before this step: resuming redoes this iteration
            runner.save_checkpoint(runner.work_dir, filename, by_epoch=False,
                                   meta=dict(epoch=runner.epoch, iter=runner.iter),
                                   backend_args=dict(ATOMIC_BACKEND_ARGS))
            saved = (f' The weights from before this step are saved in '
                     f'{osp.join(runner.work_dir, filename)}; resume with --resume <that file> '
                     'after the fix.')
        raise NonFiniteLossError(f'{reason}. Training stopped before the update.{saved} {fix}')
