"""Where eager PyTorch inference spends its time: per-part latency and the costliest ops.

Latency is taken as in :mod:`kd_det.deploy.latency` (batch 1, one thread, every model and part
interleaved, medians); the op breakdown comes from ``torch.profiler`` over separate runs (the
profiler's own overhead is not in the latencies).
"""
from typing import Callable, Dict, List, Sequence

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from kd_det.deploy.eager_inference import to_channels_last
from kd_det.deploy.latency import interleaved_medians_ms

PARTS = ('backbone', 'neck', 'head', 'all')


def part_callables(detector: nn.Module, image: torch.Tensor) -> Dict[str, Callable[[], object]]:
    """``{part: callable}`` running one part of ``detector`` on fixed inputs: the backbone on
    ``image`` (1, 3, H, W), the neck on the backbone's outputs, the dense head on the neck's,
    and all three. A detector with channels-last weights gets a channels-last image."""
    first_weight = next((p for p in detector.parameters() if p.dim() == 4), None)
    if first_weight is not None and \
            first_weight.is_contiguous(memory_format=torch.channels_last) and \
            not first_weight.is_contiguous():
        image = to_channels_last(image)
    with torch.no_grad():
        backbone_out = detector.backbone(image)
        neck_out = detector.neck(backbone_out) if detector.with_neck else backbone_out
    head = detector.bbox_head
    return dict(backbone=lambda: detector.backbone(image),
                neck=lambda: detector.neck(backbone_out),
                head=lambda: head(neck_out),
                all=lambda: head(detector.extract_feat(image)))


def top_ops(run: Callable[[], object], repeats: int = 20, top: int = 10) -> List[dict]:
    """The ``top`` ops by self CPU time over ``repeats`` profiled runs of ``run``.

    Returns:
        ``[dict(op, calls_per_run, self_ms_per_run, share)]``, share of the profiled total.
    """
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [dict(op=e.key, calls_per_run=e.count / repeats,
                 self_ms_per_run=e.self_cpu_time_total / 1000.0 / repeats,
                 share=e.self_cpu_time_total / total) for e in ranked]


def profile_models(models: Dict[str, nn.Module], input_shape: Sequence[int] = (3, 160, 160),
                   parts: Sequence[str] = PARTS, repeats: int = 100, top: int = 10
                   ) -> Dict[str, dict]:
    """Eager latency of each part of each detector (interleaved) and each part's top ops.

    Returns:
        ``{model: {part: dict(latency_ms, ops)}}``.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f'unknown parts {sorted(unknown)}; choose from {PARTS}')
    torch.manual_seed(0)
    image = torch.randn(1, *input_shape)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for name, model in models.items():
            model.eval()
            for part, run in part_callables(model, image).items():
                if part in parts:
                    runs[(name, part)] = run
        with torch.no_grad():
            medians = interleaved_medians_ms(runs, repeats=repeats)
            results: Dict[str, dict] = {name: {} for name in models}
            for (name, part), run in runs.items():
                results[name][part] = dict(latency_ms=medians[(name, part)],
                                           ops=top_ops(run, max(5, repeats // 5), top))
    finally:
        torch.set_num_threads(previous_threads)
    return results


def profile_markdown(results: Dict[str, dict]) -> str:
    """Latency per part and model, then each part's top ops, as markdown."""
    names = list(results)
    parts = [p for p in PARTS if any(p in results[n] for n in names)]
    lines = ['| part | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * len(names)]
    for part in parts:
        cells = [f'{results[n][part]["latency_ms"]:.2f} ms' if part in results[n] else '-'
                 for n in names]
        lines.append(f'| {part} | ' + ' | '.join(cells) + ' |')
    for name in names:
        for part in parts:
            if part not in results[name]:
                continue
            lines += ['', f'**{name}, {part}**: top ops by self CPU time (per run)', '',
                      '| op | calls | ms | share |', '|---|---:|---:|---:|']
            lines += [f'| {o["op"]} | {o["calls_per_run"]:g} | {o["self_ms_per_run"]:.3f} | '
                      f'{100 * o["share"]:.0f} % |' for o in results[name][part]['ops']]
    return '\n'.join(lines)


__all__ = ['PARTS', 'part_callables', 'top_ops', 'profile_models', 'profile_markdown']
