"""Write the student of a distillation run as a plain mmdet config + checkpoint.

    python tools/extract_student.py DISTILL_CONFIG DISTILL_CKPT --out-dir work_dirs/student

gives ``student.py`` and ``student.pth`` that stock mmdet tools load (``tools/test.py`` of
mmdet, ``DetInferencer``) with no kd_det wrapper keys.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Extract the student of a distillation run')
    parser.add_argument('config', help='the distillation config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='distillation checkpoint (e.g. epoch_8.pth)')
    parser.add_argument('--out-dir', required=True, help='where student.py/.pth go')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.apis.student import extract_student
    cfg_path, ckpt_path = extract_student(args.config, args.checkpoint, args.out_dir)
    print(f'student config: {cfg_path}\nstudent checkpoint: {ckpt_path}')


if __name__ == '__main__':
    main()
