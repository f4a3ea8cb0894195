"""Prune a (sparsity-trained) detector into a smaller plain mmdet config + checkpoint.

    python tools/prune.py CONFIG CKPT --ratio 0.5 --out-dir work_dirs/pruned_r0.5
    python tools/prune.py CONFIG CKPT --threshold 0      # only exactly-zero channels/edges
    python tools/prune.py CONFIG CKPT --ratio 0.5 --latency \
        --finetune-config configs/sparse_bifpn/retinanet_mnv2-sparsebifpn64_pruned_finetune.py

writes ``pruned.py`` (``load_from`` = the pruned weights; fine-tune with tools/train.py or
inherit it), ``pruned.pth`` and ``prune_report.json``. See kd_det/pruning/prune.py.
"""
import argparse
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Prune channels and BiFPN fusion edges')
    parser.add_argument('config', help='config of the checkpoint (detector or distillation)')
    parser.add_argument('checkpoint', help='checkpoint to prune')
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument('--ratio', type=float,
                     help='fraction of each family\'s channels to remove, lowest scale first')
    how.add_argument('--threshold', type=float,
                     help='remove channels whose RMS scale is at or below this (0: exact zeros '
                     'only, outputs unchanged)')
    parser.add_argument('--families', nargs='+', default=['neck', 'head', 'backbone'],
                        help='channel group families to prune')
    parser.add_argument('--edge-threshold', type=float, default=0.0,
                        help='also drop fusion edges with normalised weight at most this '
                        '(default 0: only zero-weight edges)')
    parser.add_argument('--min-channels', type=int, default=1,
                        help='every group keeps at least this many channels')
    parser.add_argument('--divisor', type=int, default=8,
                        help='round kept channel counts up to a multiple of this (8: fast '
                        'vectorised CPU kernels; 1: exactly what the ratio/threshold says)')
    parser.add_argument('--shape', type=int, nargs=2, default=[160, 160], metavar=('H', 'W'),
                        help='input size for the FLOPs report')
    parser.add_argument('--finetune-config',
                        help='take schedule/optimizer/data/hooks from this config (e.g. '
                        'configs/sparse_bifpn/*_pruned_finetune.py) so pruned.py fine-tunes')
    parser.add_argument('--latency', action='store_true',
                        help='also time both models in PyTorch and onnxruntime (batch 1, '
                        'one thread) and check ONNX parity of the pruned one')
    parser.add_argument('--out-dir', help='where to write (default: work_dirs/<config>_pruned)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.pruning.prune import prune_checkpoint
    out_dir = args.out_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0] + '_pruned')
    report = prune_checkpoint(args.config, args.checkpoint, out_dir, args.ratio, args.threshold,
                              args.families, args.edge_threshold, args.min_channels,
                              args.divisor, (3, *args.shape), args.finetune_config,
                              args.latency)
    for name, (kept, total) in report['channels'].items():
        print(f'{name}: {kept}/{total} channels kept')
    print(f'fusion edges dropped: {report["dropped_edges"] or "none"}')
    print(f'params {report["params_before"] / 1e6:.3f}M -> {report["params_after"] / 1e6:.3f}M '
          f'({100 * report["params_ratio"]:.1f}%), FLOPs {report["flops_before"] / 1e9:.3f}G -> '
          f'{report["flops_after"] / 1e9:.3f}G ({100 * report["flops_ratio"]:.1f}%), max output '
          f'change {report["max_output_change"]:.3g}')
    if args.latency:
        for key, name in (('latency_torch_ms', 'PyTorch'), ('latency_ort_ms', 'onnxruntime')):
            before, after = report[f'{key}_before'], report[f'{key}_after']
            print(f'{name} latency {before:.2f} ms -> {after:.2f} ms ({after / before:.2f}x)')
        print(f'ONNX parity of the pruned model: max abs diff '
              f'{report["onnx_max_abs_diff_after"]:.2e}')
    print(f'config: {report["config"]}\ncheckpoint: {report["checkpoint"]}')


if __name__ == '__main__':
    main()
