"""The deployment table: each student in each runtime, exported, evaluated and timed.

    python tools/deploy_table.py configs/deploy/embedded_students.py [--repeats 100]

For every model of the spec and every target (PyTorch, onnxruntime fp32/int8, NCNN fp32):
params, FLOPs, file size, batch-1 latency at each thread count (all rows interleaved) and the
COCO mAP of the deployed artifact. Prints a markdown table and writes it with the raw numbers
(``deployment.md``, ``deployment.json``) under the spec's work_root.
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='kd_det deployment table')
    parser.add_argument('spec', help='deployment spec (configs/deploy/*.py)')
    parser.add_argument('--work-root', help='where exports and reports go (default: spec)')
    parser.add_argument('--targets', nargs='+', help='subset of the spec\'s targets')
    parser.add_argument('--threads', type=int, nargs='+', help='thread counts to time')
    parser.add_argument('--repeats', type=int, default=100, help='timed runs per row')
    parser.add_argument('--calib-images', type=int, default=100,
                        help='training images that calibrate INT8')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for every model config (e.g. the data root)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.deploy.table import deployment_markdown, deployment_table
    spec = Config.fromfile(args.spec)
    work_root = args.work_root or spec.work_root
    threads = args.threads or spec.get('threads', [1, 2])
    rows = deployment_table(spec.models, work_root, args.targets or spec.targets, threads,
                            tuple(spec.get('input_shape', (3, 160, 160))), args.repeats,
                            args.calib_images, args.cfg_options)
    table = deployment_markdown(rows, threads)
    with open(osp.join(work_root, 'deployment.md'), 'w') as f:
        f.write(table + '\n')
    print('\n' + table)
    return rows


if __name__ == '__main__':
    main()
