"""Evaluate a deployed model (COCO mAP) with the network in its own runtime.

    python tools/test_deployed.py EXPORT_DIR                       # onnxruntime or NCNN export
    python tools/test_deployed.py student.pth --config CONFIG      # PyTorch, same code path

The export directory's ``detector.py`` (or CONFIG) provides the test split, the evaluator and
the head that decodes boxes and runs NMS, so every backend is scored by the same
post-processing and metric as mmdet's ``tools/test.py``.
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='COCO evaluation of a deployed kd_det model')
    parser.add_argument('model', help='export directory (tools/export_onnx.py, '
                        'tools/export_ncnn.py), its .onnx/.param file, or a .pth checkpoint')
    parser.add_argument('--config', help='config of a .pth checkpoint (a distillation config '
                        'evaluates its student)')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads of the runtime')
    parser.add_argument('--work-dir', help='the dir to save logs and evaluation results')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the detector config (data root, test_cfg)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.deploy.evaluate import build_deployed_test_runner
    runner = build_deployed_test_runner(args.model, args.config, args.work_dir,
                                        args.cfg_options, args.threads, args.out)
    return runner.test()


if __name__ == '__main__':
    main()
