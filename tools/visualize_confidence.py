"""Draw what the confidence-guided distiller selects on an image: one PNG per image with the
teacher's confidence map, the selected regions (by FPN level) and the hard-sample weights.

    python tools/visualize_confidence.py \
        configs/confidence_soft_label/csl_retinanet_mnv2_embedded.py --teacher-ckpt TEACHER.pth \
        --img data/synthetic/val/000000.png --out vis/conf.png

No annotations are needed (unlabeled images work). ``--checkpoint`` loads a distillation
checkpoint so the weights reflect that student; otherwise the student is as initialised.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise teacher confidence and regions')
    parser.add_argument('config', help='a ConfidenceSoftLabelDistiller config')
    parser.add_argument('--img', nargs='+', required=True, help='image file(s)')
    parser.add_argument('--out', required=True,
                        help='output PNG for one image, or a directory for several')
    parser.add_argument('--teacher-ckpt', help="teacher checkpoint (default: the config's)")
    parser.add_argument('--checkpoint', help='distillation checkpoint for the student')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmcv.transforms import Compose

    from kd_det.apis.runner import build_distill_algorithm
    from kd_det.visualization.confidence_maps import (collect_confidence_maps,
                                                      draw_confidence_maps)
    cfg, algorithm = build_distill_algorithm(args.config, args.checkpoint, args.teacher_ckpt,
                                             args.cfg_options)
    # the test pipeline without annotations: any image works, labeled or not
    pipeline = Compose([step for step in cfg.test_dataloader.dataset.pipeline
                        if step['type'] != 'LoadAnnotations'])
    single = len(args.img) == 1 and args.out.lower().endswith('.png')
    if not single:
        os.makedirs(args.out, exist_ok=True)
    elif osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    for index, path in enumerate(args.img):
        packed = pipeline(dict(img_path=path, img_id=index))
        data = algorithm.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        entry = collect_confidence_maps(algorithm, data['inputs'], data['data_samples'])[0]
        out_file = args.out if single else osp.join(
            args.out, osp.splitext(osp.basename(path))[0] + '.png')
        draw_confidence_maps(entry, out_file, title=f'{osp.basename(args.config)}: '
                             f'{osp.basename(path)}')
        print(f'wrote {out_file}')


if __name__ == '__main__':
    main()
