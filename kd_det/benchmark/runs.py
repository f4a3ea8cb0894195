"""One benchmark run: its claim on the run directory, its train command and its result.

A run trains through ``tools/train.py`` in a subprocess in ``<work_root>/<method>/seed<N>``;
its ``result.json`` (written while the directory is still claimed) marks it finished.
"""
import json
import os
import os.path as osp
import socket
import statistics
from contextlib import contextmanager

METRIC_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')
METRIC_NAMES = ('mAP', 'AP50', 'APs', 'APm', 'APl')
RUN_LOCK = '.running'  # in a run directory while a benchmark process trains there


class RunInProgress(RuntimeError):
    """Another live benchmark process is training this run (e.g. two specs sharing runs)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def claim_run_dir(work_dir: str):
    """Hold ``<work_dir>/.running`` while a run trains there.

    The file names the claiming process (``host pid``), created atomically, so two benchmark
    invocations that share run directories (the confidence spec links the embedded runs) never
    train the same run twice. A claim left by a process that no longer exists on this host (a
    killed benchmark) is taken over.

    Raises:
        RunInProgress: a live process (or one on another host, which cannot be checked) holds
            the claim.
    """
    path = osp.join(work_dir, RUN_LOCK)
    me = f'{socket.gethostname()} {os.getpid()}'
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                with open(path) as f:
                    host, pid = f.read().split()
            except (OSError, ValueError):  # half-written by a process that died: stale
                host, pid = socket.gethostname(), '-1'
            if host != socket.gethostname() or _pid_alive(int(pid)):
                raise RunInProgress(f'{work_dir} is being trained by process {pid} on {host} '
                                    f'(delete {path} if that process is gone)') from None
            os.remove(path)  # stale: its process is gone
    with os.fdopen(fd, 'w') as f:
        f.write(me)
    try:
        yield
    finally:
        os.remove(path)


def collect_run_result(work_dir: str) -> dict:
    """Final COCO metrics (in %), the checkpoint and the median training step time of a run,
    and the pruned model (``deploy_config``/``deploy_checkpoint``) if the run wrote one."""
    scalars = sorted(
        (osp.join(root, name) for root, _, files in os.walk(work_dir) for name in files
         if name == 'scalars.json'), key=osp.getmtime)
    if not scalars:
        raise RuntimeError(f'no scalars.json under {work_dir}: did training finish?')
    metrics, step_times = None, []
    with open(scalars[-1]) as f:
        for line in f:
            entry = json.loads(line)
            if 'coco/bbox_mAP' in entry:
                metrics = entry
            elif 'time' in entry and 'loss' in entry:
                step_times.append(entry['time'])
    if metrics is None:
        raise RuntimeError(f'{scalars[-1]} has no COCO metrics: was validation run?')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    result = {name: 100.0 * float(metrics[f'coco/{key}'])
              for name, key in zip(METRIC_NAMES, METRIC_KEYS)}
    # the first logged window includes start-up (data workers, allocator warm-up)
    steady = step_times[1:] or step_times
    result['step_time_s'] = statistics.median(steady) if steady else float('nan')
    result['checkpoint'] = checkpoint
    # a run that pruned itself (FisherPruningHook) leaves the smaller plain model here: the
    # network to measure and deploy
    pruned = osp.join(work_dir, 'pruned')
    if osp.isfile(osp.join(pruned, 'pruned.py')) and osp.isfile(osp.join(pruned, 'pruned.pth')):
        result['deploy_config'] = osp.join(pruned, 'pruned.py')
        result['deploy_checkpoint'] = osp.join(pruned, 'pruned.pth')
    return result


def format_option(key: str, value) -> str:
    if isinstance(value, (list, tuple)):
        return f'{key}=[{",".join(repr(v) if isinstance(v, str) else str(v) for v in value)}]'
    return f'{key}={value}'
