"""Checkpoints that are either complete or absent: write to a temp file, then rename.

mmengine writes ``epoch_N.pth``/``iter_N.pth`` in place, so a job killed while saving (SIGKILL,
out of memory, a full disk, a pre-empted node) leaves a truncated file that ``--resume`` picks
and fails on. ``os.replace`` within one directory is atomic on POSIX: a reader sees the old
file or the whole new one.
"""
import glob
import os
import os.path as osp
import tempfile
from typing import Union

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

ATOMIC_BACKEND = 'kd_det_atomic_local'
ATOMIC_BACKEND_ARGS = dict(backend=ATOMIC_BACKEND)
TMP_SUFFIX = '.kd_det-tmp'


def atomic_write_bytes(data: bytes, filepath: str) -> None:
    """Write ``data`` to ``filepath`` so that the file is never seen half-written."""
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=osp.basename(filepath) + '.', suffix=TMP_SUFFIX,
                                    dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put``/``put_text`` (temp file + rename)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), str(filepath))


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints are written atomically.

    A drop-in replacement: same arguments as mmengine's ``CheckpointHook``; local checkpoints
    go through :class:`AtomicLocalBackend` unless ``backend_args`` names another backend. Temp
    files left by a process killed while saving are removed at the next start. Together with
    ``kd_det``'s ``--resume`` (which skips a ``last_checkpoint`` pointer to a missing or
    incomplete file) a run killed at any moment resumes from its last complete checkpoint::

        default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=500,
                                             by_epoch=False, max_keep_ckpts=2))
    """

    def __init__(self, *args, backend_args=None, **kwargs):
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(ATOMIC_BACKEND_ARGS)
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and osp.isdir(str(self.out_dir)):
            for stale in glob.glob(osp.join(str(self.out_dir), f'*{TMP_SUFFIX}')):
                os.remove(stale)
                print_log(f'removed {stale}, a checkpoint left half-written by an interrupted '
                          'run', logger='current')

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine's save, reordered so that a good checkpoint always exists on disk.

        mmengine deletes the checkpoint that falls out of ``max_keep_ckpts`` *before* writing
        the new one; with ``max_keep_ckpts=1`` a kill (or a refused save, e.g. NaN weights)
        in between left no checkpoint at all. Here the new one is written first, then
        ``last_checkpoint`` is pointed at it, and only then is the old one removed.
        """
        evicted = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                evicted = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        # written atomically and durably (mmengine writes the pointer in place, unsynced)
        atomic_write_bytes(str(self.last_ckpt).encode(),
                           osp.join(runner.work_dir, 'last_checkpoint'))
        if evicted is not None and evicted != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(evicted))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)
            elif self.file_backend.isdir(old):  # deepspeed saves directories
                self.file_backend.rmtree(old)
