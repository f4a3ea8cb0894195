"""Export a detector (or a distilled / pruned student) to NCNN and check it in NCNN's runtime.

    python tools/export_ncnn.py CONFIG CHECKPOINT --out DIR [--shape 160 160]

Conversion goes through PyPI's pnnx (TorchScript -> NCNN; no ONNX round trip). DIR receives
``model.ncnn.param`` / ``model.ncnn.bin``, ``deploy.json`` and ``detector.py``; the check runs
the NCNN network (PyPI's ``ncnn``) and PyTorch on validation images and prints the largest
difference of the head outputs. Evaluate with ``tools/test_deployed.py DIR``.
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a kd_det/mmdet detector to NCNN')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default='work_dirs/export/ncnn', help='output directory')
    parser.add_argument('--shape', type=int, nargs=2, default=[160, 160], metavar=('H', 'W'),
                        help='input height and width traced at export (H, W stay dynamic)')
    parser.add_argument('--parity-images', type=int, default=8,
                        help='validation images compared with PyTorch (0: skip the check)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.deploy.exporter import export_model, export_report_lines
    report = export_model(args.config, args.checkpoint, args.out, 'ncnn',
                          input_shape=(3, *args.shape), parity_images=args.parity_images,
                          cfg_options=args.cfg_options)
    print('\n'.join(export_report_lines(report)))
    return report


if __name__ == '__main__':
    main()
