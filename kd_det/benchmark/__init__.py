"""The benchmark: a spec of methods (:mod:`.spec`), trained over seeds by :class:`Benchmark`
(:mod:`.runner`, one run per :mod:`.runs` directory), measured side by side
(:mod:`.measurements`) and reported (:mod:`.reports`). ``tools/benchmark.py`` is its CLI."""
from kd_det.benchmark.reports import markdown_table, paired_by_seed
from kd_det.benchmark.runner import Benchmark
from kd_det.benchmark.runs import RUN_LOCK, RunInProgress, claim_run_dir
from kd_det.benchmark.spec import BenchmarkSpecError, Method, check_spec, load_methods

__all__ = [
    'Benchmark', 'BenchmarkSpecError', 'Method', 'RUN_LOCK', 'RunInProgress', 'check_spec',
    'claim_run_dir', 'load_methods', 'markdown_table', 'paired_by_seed'
]
