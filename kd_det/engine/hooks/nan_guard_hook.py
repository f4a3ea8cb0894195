"""Stops a NaN/Inf loss or gradient from reaching the weights: skip the step, or save and stop.

And no checkpoint with NaN/Inf weights is ever written."""
import logging
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from kd_det.engine.finite_checks import describe_names, gradients_of, non_finite_names
from kd_det.engine.hooks.atomic_checkpoint_hook import ATOMIC_BACKEND_ARGS

SKIPPED_STEPS = 'nan_guard/skipped_steps'
ACTIONS = ('skip', 'stop')


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss (or a gradient) was NaN or infinite."""


class NonFiniteWeightsError(RuntimeError):
    """The model's weights hold NaN/Inf: training stops and no checkpoint of them is written."""


FIX = ('Lower the learning rate or the distillation loss weights, or check the data of this '
       'batch and the teacher checkpoint.')


def non_finite_losses(losses: Dict[str, object]) -> List[str]:
    """Names of the loss terms in ``losses`` that are NaN or infinite.

    Only terms that ``BaseModel.parse_losses`` adds to the total (names containing ``loss``)
    count; logged-only values such as gate ratios do not reach the gradient.
    """
    named = [(name, v.detach()) for name, value in losses.items() if 'loss' in name
             for v in (value if isinstance(value, (list, tuple)) else [value])
             if isinstance(v, torch.Tensor)]
    names = list(dict.fromkeys(name for name, _ in named))
    if not names:
        return []
    bad = set(non_finite_names(named))
    if get_world_size() > 1:  # every rank must take the same decision, or DDP hangs
        flags = torch.tensor([int(name in bad) for name in names])
        all_reduce(flags)
        bad = {name for name, flag in zip(names, flags.tolist()) if flag}
    return [name for name in names if name in bad]


def _describe(losses: Dict[str, object], names: List[str]) -> str:
    parts = []
    for name in names:
        value = losses[name]
        value = value if isinstance(value, torch.Tensor) else torch.stack(
            [v.detach().float().mean() for v in value])
        parts.append(f'{name}={value.detach().float().mean().item()}')
    return ', '.join(parts)


def _any_flag(flag: bool) -> bool:
    """``flag`` of any rank (ranks must take the same skip decision, or DDP hangs)."""
    if get_world_size() == 1:
        return flag
    value = torch.tensor([int(flag)])
    all_reduce(value)
    return bool(value.item())


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Keeps NaN/Inf out of the weights: checks every loss term before backward, every gradient
    before the optimizer step, the weights after it, and every checkpoint before it is saved.

    A NaN in one distillation term (or in the teacher's outputs, which every distill term then
    inherits) would otherwise be summed into the total loss, back-propagated and written into
    every weight by the optimizer, leaving hours of training unrecoverable. A finite but huge
    loss can still give NaN/Inf gradients (and ``clip_grad`` turns one Inf into NaN
    everywhere). The hook sees the individual loss terms (the dict the model's ``loss()``
    returns, captured with a forward hook on the model), intercepts
    ``optim_wrapper.update_params`` so nothing is back-propagated for a bad loss, and
    ``optim_wrapper.step`` so a bad gradient is never applied. Works with any optimizer wrapper
    (``OptimWrapper``, ``BF16AutocastOptimWrapper``, ``AmpOptimWrapper``: there fp16 loss
    scaling produces Inf gradients by design and its ``GradScaler`` already skips those steps,
    so only losses and weights are checked) and in distributed runs (ranks agree).

    Actions for a bad loss or gradient, chosen by ``action``:

    * ``'skip'`` (default): no optimizer step for this iteration; a warning names the loss
      terms or parameters and the iteration; ``nan_guard/skipped_steps`` counts them in the
      log. After more than ``max_skips`` skipped steps it stops as below.
    * ``'stop'``: save the weights from before this step to ``nan_stop_iter_<N>.pth`` in the
      work dir (written atomically) and raise :class:`NonFiniteLossError`.

    Weights that become NaN/Inf although loss and gradients were finite (an update too large
    for float32) cannot be undone: the run stops at once with :class:`NonFiniteWeightsError`
    and, as for any checkpoint of NaN/Inf weights, nothing is saved over the good checkpoints.

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
        from mmengine.optim import AmpOptimWrapper
        self._handle = runner.model.register_forward_hook(self._capture_losses)
        optim_wrapper = runner.optim_wrapper
        update_params, step = optim_wrapper.update_params, optim_wrapper.step
        checks_gradients = not isinstance(optim_wrapper, AmpOptimWrapper)

        def guarded_update_params(loss, *args, **kwargs):
            losses, self._losses = self._losses, None
            bad = non_finite_losses(dict(losses or {}, loss=loss))
            if not bad:
                return update_params(loss, *args, **kwargs)
            optim_wrapper.zero_grad()
            terms = _describe(dict(losses or {}, loss=loss),
                              [n for n in bad if n != 'loss'] or bad)
            self._on_non_finite(runner, f'non-finite loss at {_where(runner)}: {terms}',
                                'steps had non-finite losses')

        def guarded_step(*args, **kwargs):
            gradients = gradients_of(runner.model) if checks_gradients else []
            bad = non_finite_names(gradients)
            if not _any_flag(bool(bad)):
                step(*args, **kwargs)
                self._check_weights(runner)
                return
            self._on_non_finite(
                runner, f'non-finite gradient at {_where(runner)}: '
                f'{describe_names(bad, len(gradients))} are NaN/Inf although every loss is '
                'finite', 'steps had non-finite losses or gradients')

        optim_wrapper.update_params = guarded_update_params
        optim_wrapper.step = guarded_step
        if runner.message_hub.get_info(SKIPPED_STEPS) is None:
            runner.message_hub.update_info(SKIPPED_STEPS, 0)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        runner.optim_wrapper.__dict__.pop('update_params', None)
        runner.optim_wrapper.__dict__.pop('step', None)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        runner.message_hub.update_scalar(f'train/{SKIPPED_STEPS}',
                                         runner.message_hub.get_info(SKIPPED_STEPS) or 0)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write a checkpoint whose weights hold NaN/Inf (it would replace good ones)."""
        state = checkpoint.get('state_dict') or {}
        bad = non_finite_names(state.items())
        if bad:
            raise NonFiniteWeightsError(
                f'refused to save a checkpoint at iteration {runner.iter}: '
                f'{describe_names(bad, len(state))} of the model hold NaN/Inf. The checkpoints '
                f'already in {runner.work_dir} are kept; resume from the newest of them '
                f'(--resume) after the fix. {FIX}')

    def _capture_losses(self, module, args, output) -> None:
        if isinstance(output, dict):  # mode='loss'; predictions are lists
            self._losses = output

    def _check_weights(self, runner) -> None:
        params = [(n, p) for n, p in runner.model.named_parameters() if p.requires_grad]
        bad = non_finite_names(params)
        if _any_flag(bool(bad)):
            raise NonFiniteWeightsError(
                f'the optimizer step at {_where(runner)} made {describe_names(bad, len(params))} '
                'NaN/Inf although loss and gradients were finite (an update too large for '
                'float32). Training stopped; no checkpoint of these weights is written, resume '
                f'from the newest checkpoint in {runner.work_dir} (--resume) after the fix. '
                f'{FIX}')

    def _on_non_finite(self, runner, what: str, too_many: str) -> None:
        hub = runner.message_hub
        skipped = (hub.get_info(SKIPPED_STEPS) or 0) + (self.action == 'skip')
        hub.update_info(SKIPPED_STEPS, skipped)
        if self.action == 'skip' and skipped <= self.max_skips:
            print_log(f'{what}. Skipped this step (no update); {skipped}/{self.max_skips} '
                      f'steps skipped so far (NanGuardHook max_skips). {FIX}',
                      logger='current', level=logging.WARNING)
            return
        reason = what if self.action == 'stop' else \
            f'{what}; more than max_skips={self.max_skips} {too_many}'
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
        raise NonFiniteLossError(f'{reason}. Training stopped before the update.{saved} {FIX}')


def _where(runner) -> str:
    return f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
