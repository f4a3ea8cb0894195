"""Export a detector (or a distilled student) to ONNX and check it against PyTorch.

    python tools/export_onnx.py CONFIG CHECKPOINT --out student.onnx [--shape 160 160]

The graph is backbone + neck + head (mmdet ``mode='tensor'``); box decoding and NMS stay in
Python. A distillation config/checkpoint exports its student.
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a kd_det/mmdet detector to ONNX')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default='model.onnx', help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, default=[160, 160], metavar=('H', 'W'),
                        help='input height and width')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--skip-check', action='store_true',
                        help='skip the onnxruntime vs PyTorch comparison')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.apis.student import build_student
    from kd_det.deploy.export import export_onnx, onnx_parity
    model = build_student(args.config, args.checkpoint, args.cfg_options)
    shape = (3, *args.shape)
    names = export_onnx(model, args.out, shape, args.opset)
    print(f'exported {args.out} with outputs {", ".join(names)}')
    if not args.skip_check:
        parity = onnx_parity(model, args.out, shape)
        print(f'onnxruntime vs PyTorch: max abs diff {parity["max_abs_diff"]:.2e} over '
              f'{parity["num_outputs"]} outputs')


if __name__ == '__main__':
    main()
