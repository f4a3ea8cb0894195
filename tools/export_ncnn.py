"""Export a detector (or a distilled / pruned student) to NCNN and check it in NCNN's runtime.

    python tools/export_ncnn.py CONFIG CHECKPOINT --out DIR [--shape 160 160]

Conversion goes through PyPI's pnnx (TorchScript -> NCNN; no ONNX round trip). DIR receives
``model.ncnn.param`` / ``model.ncnn.bin``, ``deploy.json`` and ``detector.py``; the check runs
the NCNN network (PyPI's ``ncnn``) and PyTorch on validation images and prints the largest
difference of the head outputs. Evaluate with ``tools/test_deployed.py DIR``.
"""


def parse_args(argv=None):
    from kd_det.deploy.cli import export_parser
    return export_parser('Export a kd_det/mmdet detector to NCNN',
                         'work_dirs/export/ncnn').parse_args(argv)


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
