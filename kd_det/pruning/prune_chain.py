"""The benchmark's prune chain: prune a trained method at several ratios and fine-tune it.

A benchmark spec (``configs/benchmark/sparse_bifpn.py``) may add::

    prune = dict(source='<method name>', ratios=[0.0, 0.3, 0.5],
                 finetune_config='configs/sparse_bifpn/..._pruned_finetune.py')

:func:`run_prune_chain` then prunes each seed's checkpoint of ``source`` at every ratio and
fine-tunes it (``tools/train.py`` on the written ``pruned.py``, like every other run), and adds
the results as methods ``'<source> pruned R% + FT'`` to the benchmark's table; params, FLOPs
and latency of those rows are those of the first seed's pruned model.
"""
import os.path as osp
from typing import Sequence

from kd_det.benchmark.runner import Benchmark
from kd_det.benchmark.spec import Method
from kd_det.pruning.channel_groups import FAMILIES


def pruned_method_name(source: str, ratio: float) -> str:
    """Row name of ``source`` pruned at ``ratio`` and fine-tuned. Ratio 0 removes only what is
    exactly dead (zero channels and edges, outputs unchanged): the fair "same fine-tune, no
    pruning" reference for the pruned rows."""
    if ratio == 0:
        return f'{source} + FT (not pruned)'
    return f'{source} pruned {round(100 * ratio)}% + FT'


def run_prune_chain(bench: Benchmark, source: str, ratios: Sequence[float],
                    finetune_config: str, families: Sequence[str] = FAMILIES,
                    input_shape: Sequence[int] = None) -> None:
    """Prune ``source``'s checkpoint of every seed at every ratio, fine-tune, record results.

    Finished fine-tunes (their ``result.json``) are skipped, so an interrupted chain resumes.
    """
    from kd_det.pruning.prune import prune_checkpoint
    methods = {m.name: m for m in bench.methods}
    if source not in methods:
        raise ValueError(f'prune source {source!r} is not a method of the spec '
                         f'({sorted(methods)})')
    source_method = methods[source]
    shape = tuple(input_shape or bench.input_shape)
    derived = []
    for ratio in ratios:
        name = pruned_method_name(source, ratio)
        method = None
        for seed in bench.seeds:
            result = bench.result_of(source_method, seed)
            if result is None:
                raise RuntimeError(f'{source} seed {seed} has no result; train it first')
            pruned_dir = osp.join(bench.run_dir(Method(name, '', 'student'), seed), 'pruned')
            pruned_cfg = osp.join(pruned_dir, 'pruned.py')
            if not osp.isfile(pruned_cfg):
                print(f'pruning {source} seed {seed} at ratio {ratio}', flush=True)
                prune_checkpoint(source_method.config, result['checkpoint'], pruned_dir,
                                 ratio=ratio, families=families, input_shape=shape,
                                 finetune_config=finetune_config)
            method = Method(name, pruned_cfg, 'student')
            if bench.result_of(method, seed) is None:
                print(f'fine-tuning {name} seed {seed}', flush=True)
                bench.train_one(method, seed)
            if seed == bench.seeds[0]:
                derived.append(method)
    bench.methods += [m for m in derived if m.name not in methods]
