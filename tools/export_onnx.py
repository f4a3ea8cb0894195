"""Export a detector (or a distilled student) to ONNX, fp32 or INT8, and check it.

    python tools/export_onnx.py CONFIG CHECKPOINT --out DIR [--shape 160 160]
    python tools/export_onnx.py CONFIG CHECKPOINT --out DIR --int8 [--calib-images 100]

DIR receives ``model.onnx`` (backbone + neck + head; box decoding and NMS run in the detector's
own head afterwards), ``deploy.json`` and ``detector.py``; evaluate it with
``tools/test_deployed.py DIR`` and run it on images with ``tools/infer.py DIR IMAGES``. A
distillation config/checkpoint exports its student. INT8 is post-training static quantization
in onnxruntime (QDQ, per-channel int8 weights, uint8 activations calibrated on training images).
"""


def parse_args(argv=None):
    from kd_det.deploy.cli import export_parser
    parser = export_parser('Export a kd_det/mmdet detector to ONNX', 'work_dirs/export/onnx')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--int8', action='store_true', help='post-training INT8 quantization')
    parser.add_argument('--calib-images', type=int, default=100,
                        help='training images used to calibrate INT8 activation ranges')
    parser.add_argument('--calibration', default='percentile',
                        choices=['percentile', 'minmax', 'entropy'],
                        help='INT8 activation range estimate (default: 99.999th percentile)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.out.endswith('.onnx'):
        raise SystemExit(f'--out is a directory now (it holds model.onnx, deploy.json and '
                         f'detector.py); got {args.out!r}')
    import kd_det  # noqa: F401
    from kd_det.deploy.exporter import export_model, export_report_lines
    report = export_model(args.config, args.checkpoint, args.out, 'onnxruntime', args.int8,
                          (3, *args.shape), args.calib_images, args.calibration,
                          args.parity_images, args.cfg_options, args.opset)
    print('\n'.join(export_report_lines(report, args.int8)))
    return report


if __name__ == '__main__':
    main()
