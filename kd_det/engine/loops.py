"""An epoch-based training loop that resumes mid-epoch exactly where the checkpoint was taken.

mmengine's ``EpochBasedTrainLoop`` restores the iteration counter from a checkpoint but then
replays the *whole* interrupted epoch: with iteration checkpoints (``by_epoch=False``) a resumed
run trains on some batches twice and ends with more steps than planned. This loop skips the
batches the checkpoint already covers (at the sampler, so they are not even loaded) and
restores the random number generators, so a single-process run killed mid-epoch and resumed
ends with the same weights as one that never stopped.
"""
import logging
import random
from typing import Iterator, Optional

import numpy as np
import torch
from mmdet.registry import LOOPS
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

RNG_STATE = 'resumable_loop/rng_state'


def rng_state() -> dict:
    """The state of every random number generator a training step may draw from."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    python = state['python']
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _SkipFirstBatches:
    """A batch sampler that drops the first ``skip`` batches of ``batch_sampler`` (indices only,
    nothing is loaded for them)."""

    def __init__(self, batch_sampler, skip: int):
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self) -> Iterator:
        batches = iter(self.batch_sampler)
        for _ in range(self.skip):
            next(batches, None)
        yield from batches

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.skip)


def skip_first_batches(loader: DataLoader, skip: int) -> DataLoader:
    """A one-epoch copy of ``loader`` that starts at batch ``skip`` of the same epoch order."""
    return DataLoader(
        loader.dataset, batch_sampler=_SkipFirstBatches(loader.batch_sampler, skip),
        num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes in the middle of an epoch at the right batch.

    A drop-in replacement (same arguments); pair it with iteration checkpoints::

        train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=12, val_interval=12)
        default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=200,
                                             by_epoch=False))

    After each step the states of Python's, NumPy's and torch's random generators are kept in
    the message hub, which every checkpoint stores. On resume the loop skips the batches of the
    current epoch the checkpoint covers (the sampler's order for an epoch depends only on the
    seed and the epoch) and restores the generators, so data augmentation continues with the
    same random draws. The result is identical to an uninterrupted run for a single process
    with ``num_workers=0``; with worker processes or several ranks the batches are the same but
    the augmentation draws after the resume differ (workers and ranks have their own
    generators, which are not checkpointed).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore_pending: Optional[bool] = None

    def run_epoch(self) -> None:
        if self._restore_pending is None:  # first epoch of this process: resumed or fresh?
            self._restore_pending = self._iter > 0
        done = self._iter - self._epoch * len(self.dataloader)
        if not self._restore_pending:
            return super().run_epoch()
        self._restore_pending = False
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        loader, discard = self.dataloader, 0
        if done >= len(loader):  # the checkpoint was taken after the epoch's last batch
            loader, done = [], len(loader)
        elif done > 0:
            print_log(f'resuming epoch {self._epoch + 1} at batch {done + 1}/{len(loader)}: '
                      f'skipping the {done} batches the checkpoint already covers',
                      logger='current')
            if getattr(loader, 'batch_sampler', None) is not None:
                loader = skip_first_batches(loader, done)
            else:  # no batch sampler to skip in: load the batches and drop them
                discard = done
        batches = iter(loader)
        for _ in range(discard):
            next(batches)
        self._restore_rng()
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch) -> None:
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch,
                                               optim_wrapper=self.runner.optim_wrapper)
        # the state a resumed run must continue from if the hooks below save a checkpoint
        self.runner.message_hub.update_info(RNG_STATE, rng_state())
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
        self._iter += 1

    def _restore_rng(self) -> None:
        state = self.runner.message_hub.get_info(RNG_STATE)
        if state is None:
            print_log('the checkpoint has no random generator states (saved by another loop?); '
                      'data augmentation after the resume will differ from an uninterrupted '
                      'run', logger='current', level=logging.WARNING)
        elif get_world_size() == 1:
            set_rng_state(state)
