"""Train, evaluate and time a list of methods over seeds; write results.csv, a table and a plot.

The spec (its format and the checks made on loading) is :mod:`kd_det.benchmark.spec`.

Every run trains through ``tools/train.py`` in a subprocess (its log in the run's work dir), so
the benchmark measures exactly what a user runs. A run whose ``result.json`` exists is not run
again, so an interrupted benchmark resumes where it stopped; a run another benchmark process
claimed (:func:`kd_det.benchmark.runs.claim_run_dir`) or finished meanwhile is not trained
twice. A run starts once the runs it needs have finished: distillation runs need the teacher
trained with ``teacher_seed`` (or the ``teacher_from`` row of the same seed), fine-tunes the
``init_from`` row of the same seed.
"""
import functools
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Dict, List, Optional, Sequence

from kd_det.benchmark.reports import (add_gap_closed, markdown_table, paired_by_seed,
                                      paired_markdown, plot_map_vs_latency, write_csv)
from kd_det.benchmark.runs import (METRIC_NAMES, RunInProgress, claim_run_dir,
                                   collect_run_result, format_option)
from kd_det.benchmark.spec import BenchmarkSpecError, Method, load_methods, spec_label

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
            raise BenchmarkSpecError(f'{spec_label(spec)}: no work_root; add work_root='
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

    def method_named(self, name: str) -> Method:
        return next(m for m in self.spec_methods + self.methods if m.name == name)

    def dependencies(self, method: Method, seed: int) -> List[tuple]:
        """(method, seed) runs whose checkpoints ``method`` at ``seed`` starts from."""
        needs = []
        if method.role == 'distill':
            needs.append((self.method_named(method.teacher_from), seed) if method.teacher_from
                         else (self.methods[0], self.teacher_seed))
        if method.init_from:
            needs.append((self.method_named(method.init_from), seed))
        return needs

    def _checkpoint_of(self, method: Method, seed: int, needed_by: Method) -> str:
        result = self.result_of(method, seed)
        if result is None:
            raise RuntimeError(f'{needed_by.name!r} seed {seed} starts from {method.name!r} '
                               f'seed {seed}, which has not been trained yet')
        return result['checkpoint']

    def train_one(self, method: Method, seed: int) -> dict:
        work_dir = self.run_dir(method, seed)
        os.makedirs(work_dir, exist_ok=True)
        options = dict(self.cfg_options)
        options.update(method.cfg_options)
        options['randomness.seed'] = seed
        if method.role == 'distill':
            options['model.teacher_ckpt'] = self.teacher_checkpoint() if not \
                method.teacher_from else self._checkpoint_of(
                    self.method_named(method.teacher_from), seed, method)
        if method.init_from:
            start = self._checkpoint_of(self.method_named(method.init_from), seed, method)
            if _wraps_architecture(method.config):  # a distillation/pruning algorithm
                options['model.architecture.init_cfg.type'] = 'Pretrained'
                options['model.architecture.init_cfg.checkpoint'] = start
            else:
                options['load_from'] = start
        cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), method.config,
               '--work-dir', work_dir, *self.train_args, '--cfg-options']
        cmd += [format_option(k, v) for k, v in options.items()]
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
        """Train every planned run that has no result yet, in plan order, ``jobs`` at a time,
        each once the runs it starts from have finished (the distillation teacher first).

        With ``jobs > 1`` each training process gets ``cpus // jobs`` threads. A failed run is
        reported and the independent runs go on (the failures are raised at the end); the runs
        that need it are skipped. A run another benchmark process is training is skipped (run
        again to collect it).
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
        progress = _Progress(len(runs))
        failures = self._run_when_ready(todo, jobs, progress)
        if failures:
            raise RuntimeError(f'{len(failures)} run(s) failed; first: {failures[0]}')

    def _run_when_ready(self, todo: List[tuple], jobs: int,
                        progress: '_Progress') -> List[Exception]:
        """Train ``todo`` (``(index, method, seed)``), ``jobs`` at a time, each once the runs
        it depends on (:meth:`dependencies`) have results; a run whose dependency failed or
        cannot run is reported and skipped. Returns the failures."""
        failures: List[Exception] = []
        pending, running, failed = list(todo), {}, set()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            while pending or running:
                planned = {(m.name, s) for _, m, s in pending} | set(running.values())
                for item in list(pending):
                    needs = self.dependencies(item[1], item[2])
                    blocked = [(m.name, s) for m, s in needs if (m.name, s) in failed or (
                        (m.name, s) not in planned and self.result_of(m, s) is None)]
                    if blocked:
                        pending.remove(item)
                        failed.add((item[1].name, item[2]))
                        progress.say(f'{progress.prefix(*item)}: skipped, it needs '
                                     f'{blocked[0][0]!r} seed {blocked[0][1]}, which failed '
                                     'or is not planned')
                        failures.append(RuntimeError(f'{item[1].name} seed {item[2]}: '
                                                     f'needs {blocked[0]}'))
                    elif len(running) < max(1, jobs) and all(
                            self.result_of(m, s) is not None for m, s in needs):
                        pending.remove(item)
                        future = pool.submit(self._train_reporting, *item, progress)
                        running[future] = (item[1].name, item[2])
                if not running:
                    if pending:  # nothing could start: the rows need each other
                        raise BenchmarkSpecError(
                            'init_from/teacher_from rows need each other in a circle: ' +
                            ', '.join(f'{m.name!r} seed {s}' for _, m, s in pending))
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    if future.result() is not None:
                        failures.append(future.result())
                        failed.add(key)
        return failures

    def _train_reporting(self, index: int, method: Method, seed: int,
                         progress: '_Progress') -> Optional[Exception]:
        """Train one run, printing its progress lines; the error if it failed."""
        prefix = progress.prefix(index, method, seed)
        progress.say(f'{prefix}: training ... (log: {self.run_dir(method, seed)}/'
                     'train_stdout.log)')
        try:
            result = self.train_one(method, seed)
        except RunInProgress as err:  # its own process reports it; run again to collect
            progress.say(f'{prefix}: skipped, {err}')
            return None
        except Exception as err:  # reported at the end; independent runs go on
            progress.say(f'{prefix}: FAILED: {err}')
            return err
        if result.get('finished_elsewhere'):
            progress.say(f'{prefix}: finished meanwhile by another benchmark process, '
                         f'mAP {result["mAP"]:.1f}')
        else:
            progress.say(f'{prefix}: mAP {result["mAP"]:.1f} in {result["wall_time_s"]:.0f} s '
                         f'(elapsed {progress.elapsed_min():.1f} min)')
        return None

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
        """Params/FLOPs/latency per method and training step times, all side by side.

        Results are cached in ``<work_root>/measurements.json``. Latencies are only comparable
        when taken in one sitting, so a trained method missing from the cache (or
        ``remeasure``) re-measures every method, not just the new one.
        """
        from kd_det.benchmark.measurements import measure_deployment, measure_step_times
        cache_path = osp.join(self.work_root, 'measurements.json')
        cache = {}
        if osp.isfile(cache_path) and not remeasure:
            with open(cache_path) as f:
                cache = json.load(f)
        trained = [m for m in self.reported_methods if self.has_results(m)]
        if any(m.name not in cache for m in trained):
            cache = {}  # side by side or not at all, as for the step times below
        unmeasured = [m for m in trained if m.name not in cache]
        if unmeasured:
            print(f'measuring {", ".join(m.name for m in unmeasured)} side by side: params, '
                  'FLOPs, PyTorch and onnxruntime latency', flush=True)
            students = {}
            for method in unmeasured:
                result = self.result_of(method, self.seeds[0]) or self.result_of(
                    method, self.teacher_seed)
                if result and result.get('deploy_config'):  # a run that pruned itself
                    students[method.name] = (result['deploy_config'],
                                             result['deploy_checkpoint'], {})
                else:
                    students[method.name] = (method.config,
                                             result['checkpoint'] if result else None,
                                             self._merged_options(method))
            cache.update(measure_deployment(students, osp.join(self.work_root, 'onnx'),
                                            self.input_shape, latency_repeats))
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


@functools.lru_cache(maxsize=None)
def _wraps_architecture(config: str) -> bool:
    """Whether ``config``'s model is an algorithm around a detector (``model.architecture``:
    mmrazor distillation or pruning), whose detector starts from a checkpoint by its
    ``init_cfg`` rather than by ``load_from``."""
    from mmengine.config import Config
    return 'architecture' in Config.fromfile(config).model


class _Progress:
    """The benchmark's progress lines: ``[i/n] <method> seed <s>: ...``, one whole line per
    message (training threads print concurrently), with the minutes since the start."""

    def __init__(self, total: int):
        self.total = total
        self.started = time.time()
        self._lock = threading.Lock()

    def prefix(self, index: int, method: Method, seed: int) -> str:
        return f'[{index}/{self.total}] {method.name} seed {seed}'

    def elapsed_min(self) -> float:
        return (time.time() - self.started) / 60

    def say(self, line: str) -> None:
        with self._lock:
            sys.stdout.write(line + '\n')
            sys.stdout.flush()
