"""The benchmark's reports: per-method table, gap closed, paired-by-seed deltas, CSV and plot."""
import csv
import statistics
from typing import Dict, List

from kd_det.benchmark.runs import METRIC_NAMES
from kd_det.benchmark.spec import Method


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
