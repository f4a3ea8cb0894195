"""Draw what a distiller distills: one PNG per image with FG mask, gate and per-location loss.

    python tools/visualize_distill.py configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py \
        --teacher-ckpt TEACHER.pth [--checkpoint DISTILL.pth] --num-images 4 --out-dir vis/
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise distillation masks, gates, losses')
    parser.add_argument('config', help='distillation config')
    parser.add_argument('--teacher-ckpt', help='teacher checkpoint (default: the config\'s)')
    parser.add_argument('--checkpoint', help='distillation checkpoint for the student '
                        '(default: the student as initialised)')
    parser.add_argument('--split', choices=['train', 'val'], default='val')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--levels', type=int, nargs='+', help='feature levels to draw (0 = P3)')
    parser.add_argument('--out-dir', default='work_dirs/visualize_distill')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from kd_det.apis.runner import build_distill_algorithm
    from kd_det.visualization.distill_maps import collect_distill_maps, draw_distill_maps
    cfg, algorithm = build_distill_algorithm(args.config, args.checkpoint, args.teacher_ckpt,
                                             args.cfg_options)
    loader_cfg = Config(cfg[f'{args.split}_dataloader'].to_dict())
    loader_cfg.batch_size = 1
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    # GT is needed: the test pipeline of the embedded dataset loads annotations
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    os.makedirs(args.out_dir, exist_ok=True)
    for index, batch in enumerate(loader):
        if index >= args.num_images:
            break
        entry = collect_distill_maps(algorithm, batch)[0]
        name = osp.splitext(osp.basename(batch['data_samples'][0].img_path))[0]
        out_file = osp.join(args.out_dir, f'{name}.png')
        draw_distill_maps(entry, out_file, args.levels, title=f'{osp.basename(args.config)}')
        print(f'wrote {out_file}')


if __name__ == '__main__':
    main()
