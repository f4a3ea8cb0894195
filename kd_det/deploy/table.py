"""The deployment table: every student in every runtime, side by side.

For each model of a spec (name, config, checkpoint) and each deployment target (PyTorch,
onnxruntime fp32 / int8, NCNN fp32): parameters, FLOPs, file size, batch-1 latency at each
thread count, and COCO mAP of the deployed artifact through the shared post-processing
(:mod:`kd_det.deploy.evaluate`). Latencies of all rows are measured interleaved, per thread
count (row A, row B, ..., row A, ...), so load from other work hits every row alike; each
row's median is reported with its ratio to the reference row.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.deploy.artifact import artifact_size_bytes, resolve_model
from kd_det.deploy.backends import open_backend
from kd_det.deploy.complexity import params_and_flops
from kd_det.deploy.evaluate import evaluate_deployed
from kd_det.deploy.exporter import export_model
from kd_det.deploy.images import prepared_images
from kd_det.deploy.latency import interleaved_medians_ms
from kd_det.utils.names import path_slug

# target name -> (export backend, int8); 'pytorch' is the checkpoint itself
TARGETS = {
    'PyTorch fp32': None,
    'ORT fp32': ('onnxruntime', False),
    'ORT int8': ('onnxruntime', True),
    'NCNN fp32': ('ncnn', False),
}
# why a target the issue names is not a row
UNAVAILABLE = {'NCNN int8': 'ncnn2table/ncnn2int8 are not in the PyPI ncnn/pnnx wheels'}


def export_targets(model: dict, out_root: str, input_shape: Sequence[int],
                   targets: Sequence[str], calib_images: int = 100,
                   cfg_options: Optional[dict] = None) -> Dict[str, dict]:
    """Export one model to every target (``out_root/<model>/<target>``); returns per target
    ``dict(path, config, parity)`` (PyTorch: the checkpoint and its config)."""
    exported = {}
    for target in targets:
        spec = TARGETS[target]
        if spec is None:
            exported[target] = dict(path=model['checkpoint'], config=model['config'],
                                    parity=None)
            continue
        backend, int8 = spec
        out_dir = osp.join(out_root, path_slug(model['name']), path_slug(target))
        report = export_model(model['config'], model['checkpoint'], out_dir, backend, int8,
                              input_shape, calib_images, parity_images=4,
                              cfg_options=cfg_options)
        exported[target] = dict(path=out_dir, config=None, parity=report['parity'])
    return exported


def measure_latency(rows: List[dict], image, threads: int, repeats: int,
                    warmup: int = 5) -> Dict[str, float]:
    """Interleaved median ms of every row's network on ``image`` with ``threads`` threads."""
    runs = {}
    for row in rows:
        backend = open_backend(resolve_model(row['path'], row['config']), threads)
        runs[row['key']] = lambda backend=backend: backend(image)
    return interleaved_medians_ms(runs, warmup, repeats)


def deployment_table(models: Sequence[dict], out_root: str,
                     targets: Sequence[str] = tuple(TARGETS), threads: Sequence[int] = (1, 2),
                     input_shape: Sequence[int] = (3, 160, 160), repeats: int = 100,
                     calib_images: int = 100, cfg_options: Optional[dict] = None,
                     log=print) -> List[dict]:
    """Export, evaluate and time every (model, target); returns one dict per row and writes
    ``out_root/deployment.json``.

    Args:
        models: ``dict(name, config, checkpoint)`` each; the first is the reference of the
            latency ratios.
        targets: keys of :data:`TARGETS`.
        threads: thread counts timed (each interleaved across all rows).
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f'unknown deployment target(s) {unknown}; known: {list(TARGETS)} '
                         f'({", ".join(f"{k}: {v}" for k, v in UNAVAILABLE.items())})')
    rows = []
    for model in models:
        for key in ('name', 'config', 'checkpoint'):
            if not model.get(key):
                raise ValueError(f'every model needs name, config and checkpoint; got {model}')
        if not osp.isfile(model['checkpoint']):
            raise FileNotFoundError(f'{model["name"]}: checkpoint {model["checkpoint"]} does '
                                    'not exist (train it first; the spec names the command)')
        log(f'[{model["name"]}] exporting to {", ".join(t for t in targets)}')
        student = build_student(model['config'], model['checkpoint'], cfg_options)
        cost = params_and_flops(student, input_shape)
        # a training checkpoint also holds optimizer state (and a teacher): count the weights
        torch_bytes = sum(t.numel() * t.element_size() for t in student.state_dict().values())
        for target, export in export_targets(model, out_root, input_shape, targets,
                                             calib_images, cfg_options).items():
            deployed = resolve_model(export['path'], export['config'])
            log(f'[{model["name"]} / {target}] evaluating')
            # the table's own lines are the progress; the runner's INFO logs would bury them
            quiet = dict(cfg_options or {}, log_level='WARNING')
            metrics = evaluate_deployed(export['path'], export['config'], cfg_options=quiet,
                                        work_dir=osp.join(out_root, 'eval',
                                                          path_slug(model['name']),
                                                          path_slug(target)))
            rows.append(dict(model=model['name'], target=target, key=f'{model["name"]} | {target}',
                             path=export['path'], config=export['config'],
                             params=cost['params'], flops=cost['flops'],
                             size_mb=(torch_bytes if deployed.backend == 'pytorch'
                                      else artifact_size_bytes(deployed)) / 2**20,
                             mAP=100 * metrics['coco/bbox_mAP'],
                             AP50=100 * metrics['coco/bbox_mAP_50'],
                             max_abs_diff=(export['parity'] or {}).get('max_abs_diff')))
    cfg = student_config(load_config(models[0]['config'], cfg_options=cfg_options))
    image = next(prepared_images(cfg, 'val', 1))[0]
    for count in threads:
        log(f'timing {len(rows)} rows interleaved, {count} thread(s), {repeats} runs each')
        medians = measure_latency(rows, image, count, repeats)
        for row in rows:
            row[f'latency_{count}t_ms'] = medians[row['key']]
    os.makedirs(out_root, exist_ok=True)
    with open(osp.join(out_root, 'deployment.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    return rows


def deployment_markdown(rows: List[dict], threads: Sequence[int] = (1, 2)) -> str:
    """Markdown table of :func:`deployment_table` rows; speed-ups against the first row."""
    reference = rows[0]
    head = ['model', 'runtime', 'params (M)', 'FLOPs (G)', 'weights (MB)']
    for count in threads:
        head += [f'{count} thread ms', f'speed-up ({count}t)']
    head += ['mAP', 'AP50', 'max abs diff vs PyTorch']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        cells = [row['model'], row['target'], f'{row["params"] / 1e6:.3f}',
                 f'{row["flops"] / 1e9:.3f}', f'{row["size_mb"]:.2f}']
        for count in threads:
            ms = row[f'latency_{count}t_ms']
            cells += [f'{ms:.2f}', f'{reference[f"latency_{count}t_ms"] / ms:.2f}x']
        diff = row['max_abs_diff']
        cells += [f'{row["mAP"]:.1f}', f'{row["AP50"]:.1f}',
                  '-' if diff is None else f'{diff:.1e}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    notes = ['weights: the network file(s) of the export; PyTorch: the fp32 state dict.']
    notes += [f'{name}: not available ({why})' for name, why in UNAVAILABLE.items()]
    return '\n'.join(lines) + '\n\n' + '\n'.join(notes)
