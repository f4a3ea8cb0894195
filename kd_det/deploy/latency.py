"""Side-by-side deployment cost of several detectors: params, FLOPs, PyTorch and ORT latency.

This is kd_det's one latency path (the benchmark, the prune chain and ``tools/prune.py
--latency`` all time through :func:`compare_deployment`). Latencies are measured interleaved run
by run (model A, model B, model A, ...; batch 1, one thread), and each model's median is
reported, so load from other work on a shared machine hits all models alike and the ratios
between them stay meaningful when absolute numbers drift. One model alone is timed the same way.
"""
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, Sequence

import numpy as np
from torch import nn

from kd_det.deploy.backends import OnnxRuntimeBackend, TorchBackend
from kd_det.deploy.complexity import params_and_flops
from kd_det.deploy.export import export_onnx, onnx_parity
from kd_det.utils.names import path_slug


def interleaved_medians_ms(runs: Dict[str, Callable[[], object]], warmup: int = 10,
                           repeats: int = 100) -> Dict[str, float]:
    """Median wall time (ms) of each callable, calling them in turn ``repeats`` times."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def compare_deployment(models: Dict[str, nn.Module], onnx_dir: str,
                       input_shape: Sequence[int] = (3, 160, 160), repeats: int = 100,
                       warmup: int = 10) -> Dict[str, dict]:
    """Measure every model (exported to ``onnx_dir/<name>.onnx``); returns ``{name:
    dict(params, flops, latency_torch_ms, latency_ort_ms, onnx_max_abs_diff)}``."""
    os.makedirs(onnx_dir, exist_ok=True)
    results, torch_runs, ort_runs = {}, {}, {}
    image = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    for name, model in models.items():
        model.eval()
        results[name] = params_and_flops(model, input_shape)
        onnx_path = osp.join(onnx_dir, f'{path_slug(name)}.onnx')
        export_onnx(model, onnx_path, input_shape)
        results[name]['onnx_max_abs_diff'] = onnx_parity(model, onnx_path,
                                                         input_shape)['max_abs_diff']
        torch_backend, ort_backend = TorchBackend(model), OnnxRuntimeBackend(onnx_path)
        torch_runs[name] = lambda backend=torch_backend: backend(image)
        ort_runs[name] = lambda backend=ort_backend: backend(image)
    torch_ms = interleaved_medians_ms(torch_runs, warmup, repeats)
    ort_ms = interleaved_medians_ms(ort_runs, warmup, repeats)
    for name in models:
        results[name]['latency_torch_ms'] = torch_ms[name]
        results[name]['latency_ort_ms'] = ort_ms[name]
    return results


def latency_markdown(results: Dict[str, dict], reference: str = None) -> str:
    """Markdown table of :func:`compare_deployment` results, ratios against ``reference``
    (default: the first model)."""
    reference = reference or next(iter(results))
    ref = results[reference]
    lines = ['| model | params (M) | FLOPs (G) | neck FLOPs (M) | PyTorch ms | ORT ms | '
             'FLOPs / ref | neck FLOPs / ref | PyTorch / ref | ORT / ref | ONNX max abs diff |',
             '|' + '---|' * 11]
    def ratio(value, reference_value):
        return f'{value / reference_value:.2f}' if value is not None and reference_value else '-'

    for name, r in results.items():
        neck = r.get('neck_flops')
        cells = [name, f'{r["params"] / 1e6:.3f}', f'{r["flops"] / 1e9:.3f}',
                 f'{neck / 1e6:.1f}' if neck is not None else '-',
                 f'{r["latency_torch_ms"]:.2f}', f'{r["latency_ort_ms"]:.2f}',
                 ratio(r['flops'], ref['flops']), ratio(neck, ref.get('neck_flops')),
                 ratio(r['latency_torch_ms'], ref['latency_torch_ms']),
                 ratio(r['latency_ort_ms'], ref['latency_ort_ms']),
                 f'{r["onnx_max_abs_diff"]:.1e}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
