"""Train, evaluate and time a list of methods over seeds; write results.csv, a table and a plot.

A benchmark spec is an mmengine config (see ``configs/benchmark/embedded.py``)::

    work_root = 'work_dirs/benchmark/embedded'
    teacher = dict(name='teacher', config='configs/...teacher.py')
    student = dict(name='student', config='configs/...student.py')
    methods = [dict(name='PKD (mmrazor)', config='configs/...pkd.py'), ...]  # distillation
    seeds = [0, 1, 2]

The spec is checked when it is loaded (:func:`check_spec`): a row without ``name`` or
``config``, a config file that does not exist, a misspelt key, a seed that is not an int or a
``gap_between``/``ablation_of``/``paired_reference`` naming no row fails before anything
trains, with the spec file, the row and the key named.

Every run trains through ``tools/train.py`` in a subprocess (its log in the run's work dir), so
the benchmark measures exactly what a user runs. A run whose ``result.json`` exists is not run
again, so an interrupted benchmark resumes where it stopped. Distillation runs use the teacher
trained with ``teacher_seed``.
"""
import csv
import json
import os
import os.path as osp
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from kd_det.models.utils.arg_checks import describe, did_you_mean

METRIC_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')
METRIC_NAMES = ('mAP', 'AP50', 'APs', 'APm', 'APl')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


@dataclass
class Method:
    """One row of the benchmark: a config and its role."""
    name: str
    config: str
    role: str  # 'teacher', 'student' or 'distill'
    cfg_options: Dict[str, object] = field(default_factory=dict)
    # (lower, upper) method names: the row reports how much of the mAP gap between them it
    # closes; distillation rows default to (student, teacher)
    gap_between: Optional[Sequence[str]] = None
    # seeds this row runs with (e.g. one seed for an ablation row); None: the benchmark's seeds
    seeds: Optional[Sequence[int]] = None
    # an ablation row's reference: the row it changes, compared with it paired by seed
    ablation_of: Optional[str] = None

    @property
    def slug(self) -> str:
        return ''.join(c if c.isalnum() else '_' for c in self.name).strip('_').lower()


def load_methods(spec) -> List[Method]:
    """Teacher, student and distillation methods of a spec config, in table order.

    Raises:
        BenchmarkSpecError: the spec has mistakes (see :func:`check_spec`).
    """
    check_spec(spec)
    methods = [Method(spec.teacher['name'], spec.teacher['config'], 'teacher',
                      dict(spec.teacher.get('cfg_options', {}))),
               Method(spec.student['name'], spec.student['config'], 'student',
                      dict(spec.student.get('cfg_options', {})))]
    for item in spec.get('methods', []):
        # role 'student' for a method that trains without the teacher (e.g. another neck)
        role = item.get('role', 'distill')
        gap_between = item.get('gap_between')
        if gap_between is None and role == 'distill':
            gap_between = (methods[1].name, methods[0].name)
        methods.append(Method(item['name'], item['config'], role,
                              dict(item.get('cfg_options', {})), gap_between,
                              item.get('seeds'), item.get('ablation_of')))
    return methods


# ---- spec checks --------------------------------------------------------------------------------
class BenchmarkSpecError(ValueError):
    """Mistakes in a benchmark spec; the message names the spec file, the row and the key."""


SPEC_KEYS = ('work_root', 'teacher', 'student', 'methods', 'seeds', 'teacher_seed',
             'teacher_seeds', 'input_shape', 'paired_reference', 'prune')
BASELINE_KEYS = ('name', 'config', 'cfg_options')  # the teacher and the student rows
METHOD_KEYS = ('name', 'config', 'role', 'cfg_options', 'gap_between', 'seeds', 'ablation_of')
METHOD_ROLES = ('distill', 'student')


def check_spec(spec) -> None:
    """Check a loaded spec before anything runs; every mistake is listed at once.

    Each row (``teacher``, ``student``, ``methods[i]``) is a dict with a non-empty ``name`` and
    a ``config`` file that exists (relative paths from the current directory), and no keys
    beyond those a row takes (a misspelt key gets the closest one suggested); seeds are ints;
    ``gap_between``, ``ablation_of``, ``paired_reference`` and ``prune.source`` name rows of
    the spec. Top-level names outside the spec's keys are helper variables and allowed, unless
    one is a near miss of a spec key (``seed`` for ``seeds``).

    Raises:
        BenchmarkSpecError: naming the spec file, each wrong row and key, and the fix.
    """
    problems: List[str] = []
    for key in spec.keys():
        close = None if key in SPEC_KEYS or not key.islower() else did_you_mean(
            key, SPEC_KEYS, cutoff=0.7)
        if close:
            problems.append(f'{key!r} is not a spec key; did you mean {close!r}? (a helper '
                            'variable this close to a spec key is refused: rename it)')
    rows = []
    for role in ('teacher', 'student'):
        if role not in spec:
            problems.append(f'no {role} row; add {role} = dict(name=..., config=...)')
        else:
            rows.append((role, spec[role], BASELINE_KEYS))
    methods = spec.get('methods', [])
    if not isinstance(methods, (list, tuple)):
        problems.append(f'methods must be a list of dict(name=..., config=...), got '
                        f'{describe(methods)}')
        methods = []
    rows += [(f'methods[{i}]', item, METHOD_KEYS) for i, item in enumerate(methods)]
    checked, names = [], []
    for label, row, allowed in rows:
        if not isinstance(row, dict):
            problems.append(f'{label} must be a dict(name=..., config=...), got {describe(row)}')
            continue
        name = row.get('name')
        if isinstance(name, str) and name:
            label = f'{label} ({name!r})'
            names.append(name)
        problems += [f'{label}: {problem}' for problem in _row_problems(row, allowed)]
        checked.append((label, row))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f'row names must be unique; {duplicates} name more than one row')
    problems += _reference_problems(spec, checked, names)
    problems += _prune_problems(spec.get('prune'))
    problems += _seed_problems(spec)
    if problems:
        where = _spec_label(spec)
        if len(problems) == 1:
            raise BenchmarkSpecError(f'{where}: {problems[0]}')
        raise BenchmarkSpecError(f'{where} has {len(problems)} mistakes:\n' +
                                 '\n'.join(f'  - {problem}' for problem in problems))


def _spec_label(spec) -> str:
    """'benchmark spec <its file>' (a spec built from a dict has no file)."""
    filename = getattr(spec, 'filename', None)
    return f'benchmark spec {filename}' if filename else 'benchmark spec'


def _row_problems(row: dict, allowed: Sequence[str]) -> List[str]:
    """What is wrong with one row dict (its keys, name, config, role, options, seeds)."""
    problems = []
    for key in row:
        if key not in allowed:
            close = did_you_mean(key, allowed)
            hint = f'did you mean {close!r}? ' if close else ''
            problems.append(f'unknown key {key!r}; {hint}a row takes {", ".join(allowed)}')
    if 'name' not in row:
        problems.append("no 'name'; add name='...' (the row's label in the tables)")
    elif not isinstance(row['name'], str) or not row['name']:
        problems.append(f'name must be a non-empty str, got {describe(row["name"])}')
    config = row.get('config')
    if 'config' not in row:
        problems.append("no 'config'; add config='configs/...py' (the config it trains)")
    elif not isinstance(config, str) or not config:
        problems.append(f'config must be a config file path, got {describe(config)}')
    elif not osp.isfile(config):
        problems.append(f'config {config!r} not found (relative paths are read from '
                        f'{os.getcwd()}: run from the repository root or give a full path)')
    if 'role' in row and row['role'] not in METHOD_ROLES:
        close = did_you_mean(row['role'], METHOD_ROLES) if isinstance(row['role'], str) \
            else None
        hint = f'; did you mean {close!r}?' if close else ''
        problems.append(f'role must be one of {METHOD_ROLES}, got {describe(row["role"])}{hint}')
    options = row.get('cfg_options', {})
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        problems.append("cfg_options must be a dict of config keys to values, e.g. "
                        f"{{'model.distiller.loss_fg_weight': 4.0}}, got {describe(options)}")
    gap_between = row.get('gap_between')
    if gap_between is not None and (not isinstance(gap_between, (list, tuple)) or
                                    len(gap_between) != 2):
        problems.append(f'gap_between must be two row names (lower, upper), got '
                        f'{describe(gap_between)}')
    if 'seeds' in row:
        problems += _seed_list_problems('seeds', row['seeds'])
    return problems


def _reference_problems(spec, rows: List[tuple], names: List[str]) -> List[str]:
    """Row names given by ``gap_between``, ``ablation_of``, ``paired_reference`` and
    ``prune.source`` that are not rows of the spec."""
    problems, references = [], []
    for label, row in rows:
        gap_between = row.get('gap_between')
        if isinstance(gap_between, (list, tuple)) and len(gap_between) == 2:
            references += [(f'{label}: gap_between', name) for name in gap_between]
        ablation_of = row.get('ablation_of')
        if ablation_of is not None and ablation_of == row.get('name'):
            problems.append(f'{label}: ablation_of names the row itself; name the row it '
                            'changes')
        elif ablation_of is not None:
            references.append((f'{label}: ablation_of', ablation_of))
    if spec.get('paired_reference') is not None:
        references.append(('paired_reference', spec.paired_reference))
    prune = spec.get('prune')
    if isinstance(prune, dict) and 'source' in prune:
        references.append(('prune.source', prune['source']))
    for where, name in references:
        if name not in names:
            close = did_you_mean(name, names) if isinstance(name, str) else None
            hint = f'did you mean {close!r}?' if close else f'the rows are {names}'
            problems.append(f'{where} {name!r} is not a row of the spec; {hint}')
    return problems


def _prune_problems(prune) -> List[str]:
    """``prune`` must be None or a dict of :func:`kd_det.apis.prune_chain.run_prune_chain`
    arguments."""
    if prune is None:
        return []
    if not isinstance(prune, dict):
        return [f'prune must be a dict(source=..., ratios=..., finetune_config=...), got '
                f'{describe(prune)}']
    import inspect

    from kd_det.apis.prune_chain import run_prune_chain
    parameters = inspect.signature(run_prune_chain).parameters
    allowed = [p for p in parameters if p != 'bench']
    required = [p for p in allowed if parameters[p].default is inspect.Parameter.empty]
    problems = [f'prune: no {key!r}; prune needs {", ".join(required)}'
                for key in required if key not in prune]
    for key in prune:
        if key not in allowed:
            close = did_you_mean(key, allowed)
            hint = f'did you mean {close!r}? ' if close else ''
            problems.append(f'prune: unknown key {key!r}; {hint}prune takes '
                            f'{", ".join(allowed)}')
    return problems


def _seed_list_problems(key: str, seeds) -> List[str]:
    if isinstance(seeds, (list, tuple)) and seeds and all(_is_seed(s) for s in seeds):
        return []
    return [f'{key} must be a non-empty list of ints >= 0, e.g. [0, 1, 2], got '
            f'{describe(seeds)}']


def _is_seed(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seed_problems(spec) -> List[str]:
    """The spec's ``seeds``, ``teacher_seed``, ``teacher_seeds``, ``input_shape`` and
    ``work_root``."""
    problems = []
    for key in ('seeds', 'teacher_seeds'):
        if key in spec:
            problems += _seed_list_problems(key, spec[key])
    if 'teacher_seed' in spec and not _is_seed(spec.teacher_seed):
        problems.append(f'teacher_seed must be an int >= 0, got {describe(spec.teacher_seed)}')
    shape = spec.get('input_shape')
    if shape is not None and not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        problems.append(f'input_shape must be (channels, height, width), e.g. (3, 160, 160), '
                        f'got {describe(shape)}')
    if 'work_root' in spec and not (isinstance(spec.work_root, str) and spec.work_root):
        problems.append(f'work_root must be a directory path, got {describe(spec.work_root)}')
    return problems


def _format_option(key: str, value) -> str:
    if isinstance(value, (list, tuple)):
        return f'{key}=[{",".join(repr(v) if isinstance(v, str) else str(v) for v in value)}]'
    return f'{key}={value}'


class Benchmark:
    """Runs a spec. See the module docstring.

    Args:
        spec: the loaded spec config.
        seeds: seeds to run (default: ``spec.seeds``).
        work_root: where runs go (default: ``spec.work_root``).
        cfg_options: overrides applied to every run (e.g. a dataset's ``data_root``).
        only: train only these method names (the teacher still trains when distillation needs
            it); the reports still show every method of the spec that has results.
        train_args: extra ``tools/train.py`` flags (e.g. ``['--amp']``).
    """

    def __init__(self, spec, seeds: Optional[Sequence[int]] = None,
                 work_root: Optional[str] = None, cfg_options: Optional[Dict] = None,
                 only: Optional[Sequence[str]] = None,
                 train_args: Sequence[str] = ()):
        self.spec = spec
        self.methods = load_methods(spec)
        self.spec_methods = list(self.methods)
        if only:
            unknown = set(only) - {m.name for m in self.methods}
            if unknown:
                raise ValueError(f'unknown methods {sorted(unknown)}; the spec has '
                                 f'{[m.name for m in self.methods]}')
            self.methods = [m for m in self.methods if m.name in only or m.role == 'teacher']
        self.seeds = list(seeds if seeds is not None else spec.get('seeds', [0]))
        self.teacher_seed = spec.get('teacher_seed', self.seeds[0])
        # seeds the teacher row is trained with (distillation always uses `teacher_seed`)
        self.teacher_seeds = [s for s in spec.get('teacher_seeds', self.seeds)
                              if s in self.seeds or s == self.teacher_seed]
        self.work_root = work_root or spec.get('work_root')
        if not self.work_root:
            raise BenchmarkSpecError(f'{_spec_label(spec)}: no work_root; add work_root='
                                     "'work_dirs/benchmark/<name>' or pass --work-root")
        self.cfg_options = dict(cfg_options or {})
        self.train_args = list(train_args)
        self.input_shape = tuple(spec.get('input_shape', (3, 160, 160)))

    # ---- runs ---------------------------------------------------------------------------------
    def run_dir(self, method: Method, seed: int) -> str:
        return osp.join(self.work_root, method.slug, f'seed{seed}')

    def result_of(self, method: Method, seed: int) -> Optional[dict]:
        """The run's ``result.json``, or None if it has not finished.

        A run directory that was moved or copied (another machine, a renamed row) still finds
        its checkpoint: the recorded absolute path falls back to the same file name in the
        run directory.
        """
        run_dir = self.run_dir(method, seed)
        path = osp.join(run_dir, 'result.json')
        if not osp.isfile(path):
            return None
        with open(path) as f:
            result = json.load(f)
        checkpoint = result.get('checkpoint')
        if checkpoint and not osp.isfile(checkpoint):
            moved = osp.join(run_dir, osp.basename(checkpoint))
            if osp.isfile(moved):
                result['checkpoint'] = moved
        return result

    def planned_runs(self) -> List[tuple]:
        """(method, seed) pairs in dependency order: the distillation teacher first."""
        teacher = self.methods[0]
        runs = [(teacher, self.teacher_seed)]
        for seed in self.seeds:
            runs += [(m, seed) for m in self.methods[1:] if seed in self.seeds_of(m)]
        runs += [(teacher, s) for s in self.teacher_seeds if s != self.teacher_seed]
        return runs

    def teacher_checkpoint(self) -> str:
        result = self.result_of(self.methods[0], self.teacher_seed)
        if result is None:
            raise RuntimeError('the teacher has not been trained yet')
        return result['checkpoint']

    def train_one(self, method: Method, seed: int) -> dict:
        work_dir = self.run_dir(method, seed)
        os.makedirs(work_dir, exist_ok=True)
        options = dict(self.cfg_options)
        options.update(method.cfg_options)
        options['randomness.seed'] = seed
        if method.role == 'distill':
            options['model.teacher_ckpt'] = self.teacher_checkpoint()
        cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), method.config,
               '--work-dir', work_dir, *self.train_args, '--cfg-options']
        cmd += [_format_option(k, v) for k, v in options.items()]
        log_path = osp.join(work_dir, 'train_stdout.log')
        start = time.time()
        with claim_run_dir(work_dir):
            # another benchmark process may have finished this run since this one planned it
            finished = self.result_of(method, seed)
            if finished is not None:
                return dict(finished, finished_elsewhere=True)
            with open(log_path, 'w') as log:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise RuntimeError(f'training {method.name!r} (seed {seed}) failed with exit '
                                   f'code {proc.returncode}; see {log_path}')
            result = collect_run_result(work_dir)
            result.update(method=method.name, role=method.role, seed=seed,
                          wall_time_s=round(time.time() - start, 1))
            # written while the run is still claimed: no other process can start it in between
            with open(osp.join(work_dir, 'result.json'), 'w') as f:
                json.dump(result, f, indent=2)
        return result

    def run(self, jobs: int = 1) -> None:
        """Train every planned run that has no result yet, ``jobs`` at a time.

        With ``jobs > 1`` each training process gets ``cpus // jobs`` threads; distillation runs
        start only once the teacher they need is trained.
        """
        runs = self.planned_runs()
        todo = []
        for index, (method, seed) in enumerate(runs, 1):
            if self.result_of(method, seed) is not None:
                print(f'[{index}/{len(runs)}] {method.name} seed {seed}: done earlier, skipped',
                      flush=True)
            else:
                todo.append((index, method, seed))
        if jobs > 1:
            os.environ['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))
        started = time.time()
        lock = threading.Lock()
        teacher_done = threading.Event()
        if self.result_of(self.methods[0], self.teacher_seed) is not None:
            teacher_done.set()
        failures = []

        def say(line: str) -> None:
            with lock:  # one whole line per message: workers print from several threads
                sys.stdout.write(line + '\n')
                sys.stdout.flush()

        def next_run():
            with lock:
                for item in todo:
                    if item[1].role != 'distill' or teacher_done.is_set():
                        todo.remove(item)
                        return item
                return None if not todo else 'wait'

        aborted = threading.Event()  # the distillation teacher failed: nothing else can run

        def worker():
            while not aborted.is_set():
                item = next_run()
                if item is None:
                    return
                if item == 'wait':
                    teacher_done.wait(timeout=5)
                    continue
                index, method, seed = item
                prefix = f'[{index}/{len(runs)}] {method.name} seed {seed}'
                say(f'{prefix}: training ... (log: '
                    f'{self.run_dir(method, seed)}/train_stdout.log)')
                try:
                    result = self.train_one(method, seed)
                except RunInProgress as err:  # its own process reports it; run again to collect
                    say(f'{prefix}: skipped, {err}')
                    if method.role == 'teacher' and seed == self.teacher_seed:
                        teacher_done.set()  # distillation runs then fail: no teacher yet
                    continue
                except Exception as err:  # reported at the end; independent runs go on
                    say(f'{prefix}: FAILED: {err}')
                    failures.append(err)
                    if method.role == 'teacher' and seed == self.teacher_seed:
                        aborted.set()
                        teacher_done.set()
                    continue
                if method.role == 'teacher' and seed == self.teacher_seed:
                    teacher_done.set()
                if result.get('finished_elsewhere'):
                    say(f'{prefix}: finished meanwhile by another benchmark process, '
                        f'mAP {result["mAP"]:.1f}')
                    continue
                say(f'{prefix}: mAP {result["mAP"]:.1f} in {result["wall_time_s"]:.0f} s '
                    f'(elapsed {(time.time() - started) / 60:.1f} min)')

        threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise RuntimeError(f'{len(failures)} run(s) failed; first: {failures[0]}')

    def seeds_of(self, method: Method) -> List[int]:
        """The seeds a non-teacher row runs with: the benchmark's, or the row's own subset."""
        if method.seeds is None:
            return self.seeds
        return [s for s in self.seeds if s in method.seeds]

    @property
    def reported_methods(self) -> List[Method]:
        """Every method of the spec, then any added later (the prune chain's rows), in order."""
        names = {m.name for m in self.spec_methods}
        return self.spec_methods + [m for m in self.methods if m.name not in names]

    def has_results(self, method: Method) -> bool:
        return any(self.result_of(method, s) for s in set(self.seeds) | {self.teacher_seed})

    # ---- measurements on the trained models ---------------------------------------------------
    def measure(self, latency_repeats: int = 50, step_repeats: int = 12,
                remeasure: bool = False) -> Dict[str, dict]:
        """Params/FLOPs/latency per method and side-by-side training step times.

        Results are cached in ``<work_root>/measurements.json``. Latencies are only comparable
        when taken in one sitting, so a trained method missing from the cache (or
        ``remeasure``) re-measures every method, not just the new one.
        """
        from kd_det.apis.measure import measure_deployment, measure_step_times
        cache_path = osp.join(self.work_root, 'measurements.json')
        cache = {}
        if osp.isfile(cache_path) and not remeasure:
            with open(cache_path) as f:
                cache = json.load(f)
        trained = [m for m in self.reported_methods if self.has_results(m)]
        if any(m.name not in cache for m in trained):
            cache = {}  # side by side or not at all, as for the step times below
        for method in trained:
            if method.name in cache:
                continue
            print(f'measuring {method.name}: params, FLOPs, PyTorch and onnxruntime latency',
                  flush=True)
            result = self.result_of(method, self.seeds[0]) or self.result_of(
                method, self.teacher_seed)
            onnx_path = osp.join(self.run_dir(method, self.seeds[0]), 'model.onnx')
            cache[method.name] = measure_deployment(
                method.config, result['checkpoint'] if result else None, onnx_path,
                self.input_shape, latency_repeats, self._merged_options(method))
        # side by side or not at all: a new method re-measures every method's step
        stepped = [m for m in trained if m.role != 'teacher']
        if {m.name for m in stepped} - set(cache.get('step_time', {})):
            print('measuring training step times side by side', flush=True)
            teacher = self.methods[0]
            cache['step_time'] = measure_step_times(
                [(m.name, m.config, self._merged_options(m)) for m in stepped],
                teacher_config=(teacher.config, self._merged_options(teacher)),
                repeats=step_repeats)
        with open(cache_path, 'w') as f:
            json.dump(cache, f, indent=2)
        return cache

    def _merged_options(self, method: Method) -> Dict:
        options = dict(self.cfg_options)
        options.update(method.cfg_options)
        return options

    # ---- reporting ----------------------------------------------------------------------------
    def rows(self, measurements: Optional[Dict] = None) -> List[dict]:
        """One aggregated row per method (mean and std over the finished seeds)."""
        rows = []
        for method in self.reported_methods:
            seeds = self.seeds_of(method) if method.role != 'teacher' else sorted(
                set(self.teacher_seeds) | {self.teacher_seed})
            results = [r for r in (self.result_of(method, s) for s in seeds) if r]
            if not results:
                continue
            row = dict(method=method.name, role=method.role, seeds=len(results))
            for name in METRIC_NAMES:
                values = [r[name] for r in results]
                row[name] = statistics.mean(values)
                row[f'{name}_std'] = statistics.stdev(values) if len(values) > 1 else 0.0
            row['train_step_s'] = statistics.median(r['step_time_s'] for r in results)
            if measurements and method.name in measurements:
                row.update(measurements[method.name])
            step = (measurements or {}).get('step_time', {})
            if method.name in step:
                row.update({f'timing_{k}': v for k, v in step[method.name].items()})
            rows.append(row)
        add_gap_closed(rows, {m.name: m for m in self.reported_methods})
        return rows

    def write_reports(self, rows: List[dict]) -> Dict[str, str]:
        """Write results.csv, results.md, results_paired.md (with the spec's ``paired_reference``)
        and, when latency was measured, map_vs_latency.png."""
        os.makedirs(self.work_root, exist_ok=True)
        paths = dict(csv=osp.join(self.work_root, 'results.csv'),
                     markdown=osp.join(self.work_root, 'results.md'))
        per_seed = self.per_seed_rows()
        write_csv(paths['csv'], per_seed)
        with open(paths['markdown'], 'w') as f:
            f.write(markdown_table(rows) + '\n')
        paired = self.paired_report(per_seed)
        if paired:
            paths['paired'] = osp.join(self.work_root, 'results_paired.md')
            with open(paths['paired'], 'w') as f:
                f.write(paired + '\n')
        if any('latency_torch_ms' in row for row in rows):
            paths['plot'] = osp.join(self.work_root, 'map_vs_latency.png')
            plot_map_vs_latency(rows, paths['plot'])
        return paths

    def paired_report(self, per_seed: List[dict]) -> str:
        """Markdown: every row against the spec's ``paired_reference``, then every ablation row
        against the row it changes (``ablation_of``), paired by seed; '' when neither ran."""
        ran = {r['method'] for r in per_seed}
        parts = []
        reference = self.spec.get('paired_reference')
        ablations = [m for m in self.reported_methods if m.ablation_of and m.name in ran]
        if reference in ran:
            table = [r for r in paired_by_seed(per_seed, reference)
                     if r['method'] not in {m.name for m in ablations}]
            parts.append(paired_markdown(table, reference))
        rows = []
        for method in ablations:
            if method.ablation_of in ran:
                rows += [r for r in paired_by_seed(per_seed, method.ablation_of)
                         if r['method'] == method.name]
        if rows:
            parts.append('Ablations, each against the row it changes:\n\n' +
                         paired_markdown(rows, 'the row it changes'))
        return '\n\n'.join(parts)

    def per_seed_rows(self) -> List[dict]:
        rows = []
        for method in self.reported_methods:
            for seed in sorted(set(self.seeds) | {self.teacher_seed}):
                result = self.result_of(method, seed)
                if result:
                    rows.append({k: v for k, v in result.items() if k != 'checkpoint'})
        return rows


def collect_run_result(work_dir: str) -> dict:
    """Final COCO metrics (in %), the checkpoint and the median training step time of a run."""
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
    return result


def paired_by_seed(per_seed_rows: List[dict], reference: str,
                   metric: str = 'mAP') -> List[dict]:
    """Each method against ``reference`` on the seeds both ran: per-seed deltas and wins.

    Seed noise (several mAP points here) is shared by two methods trained with the same seed on
    the same data order, so per-seed differences are far less noisy than differences of means.

    Args:
        per_seed_rows: one dict per run with ``method``, ``seed`` and ``metric``.
        reference: the method every other one is compared with.

    Returns:
        One dict per other method that shares at least one seed with the reference (teacher and
        other rows without shared seeds are left out): ``method``, ``seeds`` (list), ``deltas``
        (list, method - reference), ``mean_delta``, ``std_delta`` (0 for one seed), ``wins``
        (seeds where the method is strictly better), ``n``.
    """
    by_method: Dict[str, Dict[int, float]] = {}
    for row in per_seed_rows:
        by_method.setdefault(row['method'], {})[int(row['seed'])] = float(row[metric])
    if reference not in by_method:
        raise ValueError(f'paired comparison: reference {reference!r} has no results; methods '
                         f'with results: {sorted(by_method)}')
    base = by_method[reference]
    table = []
    for method, values in by_method.items():
        seeds = sorted(set(values) & set(base))
        if method == reference or not seeds or any(
                r.get('role') == 'teacher' for r in per_seed_rows if r['method'] == method):
            continue
        deltas = [values[s] - base[s] for s in seeds]
        table.append(dict(method=method, seeds=seeds, deltas=deltas,
                          mean_delta=statistics.mean(deltas),
                          std_delta=statistics.stdev(deltas) if len(deltas) > 1 else 0.0,
                          wins=sum(d > 0 for d in deltas), n=len(deltas)))
    return table


def paired_markdown(table: List[dict], reference: str) -> str:
    """The paired comparison as a markdown table (deltas in mAP points, per seed in order)."""
    lines = [f'| method | seeds | Δ mAP vs {reference} (mean ± std) | wins | per-seed Δ |',
             '|---|---|---|---|---|']
    for row in table:
        per_seed = ' / '.join(f'{d:+.1f}' for d in row['deltas'])
        spread = f' ± {row["std_delta"]:.1f}' if row['n'] > 1 else ''
        lines.append(f'| {row["method"]} | {",".join(map(str, row["seeds"]))} | '
                     f'{row["mean_delta"]:+.1f}{spread} | {row["wins"]}/{row["n"]} | '
                     f'{per_seed} |')
    return '\n'.join(lines)


def add_gap_closed(rows: List[dict], methods: Dict[str, Method]) -> None:
    """Set ``gap_closed`` (%) on rows whose method names a ``gap_between`` pair that both ran.

    ``gap_closed = 100 * (mAP - mAP_lower) / (mAP_upper - mAP_lower)`` on the mean mAPs: 100 %
    matches the upper row (e.g. the teacher), 0 % the lower one (e.g. the student alone).
    """
    by_name = {row['method']: row for row in rows}
    for row in rows:
        pair = methods[row['method']].gap_between if row['method'] in methods else None
        if not pair or pair[0] not in by_name or pair[1] not in by_name:
            continue
        lower, upper = by_name[pair[0]]['mAP'], by_name[pair[1]]['mAP']
        if upper != lower:
            row['gap_closed'] = 100.0 * (row['mAP'] - lower) / (upper - lower)


def write_csv(path: str, rows: List[dict]) -> None:
    keys: List[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _pm(row: dict, name: str) -> str:
    if row[name] < 0:  # COCOeval's -1: no ground truth of that size in the evaluation set
        return 'n/a'
    if row.get('seeds', 2) < 2:  # one seed: no spread to show
        return f'{row[name]:.1f}'
    return f'{row[name]:.1f} ± {row[name + "_std"]:.1f}'


def markdown_table(rows: List[dict]) -> str:
    """The benchmark table; metric columns are mean ± std over seeds."""
    header = ['method', 'seeds', 'mAP', 'AP50', 'APs', 'APm', 'APl', 'params (M)', 'FLOPs (G)',
              'latency PyTorch (ms)', 'latency ORT (ms)', 'train step (ms)',
              'step / student step', 'step / (student step + teacher fwd)']
    with_gap = any('gap_closed' in row for row in rows)
    if with_gap:
        header.insert(3, 'gap closed')
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [row['method'], str(row['seeds'])] + [_pm(row, n) for n in METRIC_NAMES]
        if with_gap:
            cells.insert(3, f'{row["gap_closed"]:.0f} %' if 'gap_closed' in row else '-')
        cells.append(f'{row["params"] / 1e6:.2f}' if 'params' in row else '-')
        cells.append(f'{row["flops"] / 1e9:.2f}' if 'flops' in row else '-')
        cells.append(f'{row["latency_torch_ms"]:.1f}' if 'latency_torch_ms' in row else '-')
        cells.append(f'{row["latency_ort_ms"]:.1f}' if 'latency_ort_ms' in row else '-')
        cells.append(f'{row["timing_step_ms"]:.0f}' if 'timing_step_ms' in row else '-')
        cells.append(f'{row["timing_ratio_vs_student"]:.2f}×'
                     if 'timing_ratio_vs_student' in row else '-')
        cells.append(f'{row["timing_ratio_vs_student_plus_teacher"]:.2f}×'
                     if 'timing_ratio_vs_student_plus_teacher' in row else '-')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_map_vs_latency(rows: List[dict], path: str) -> None:
    """mAP (mean ± std over seeds) against batch-1 PyTorch CPU latency."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        latency = row.get('latency_torch_ms')
        if latency is None:
            continue
        ax.errorbar(latency, row['mAP'], yerr=row['mAP_std'], fmt='o', capsize=4,
                    label=row['method'])
    ax.set_xlabel('CPU latency, batch 1, PyTorch (ms)')
    ax.set_ylabel('mAP (%), mean ± std over seeds')
    ax.set_title('mAP vs latency')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
