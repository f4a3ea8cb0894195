"""Train a detector or a distillation algorithm (same flags as mmdet's tools/train.py)."""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector with kd_det')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 on GPU, bf16 autocast on CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or from the latest one in the '
                        'work dir when no path is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from kd_det.apis.runner import build_train_runner, set_local_rank
    set_local_rank(args.local_rank)
    runner = build_train_runner(args.config, args.work_dir, args.cfg_options, args.resume,
                                args.amp, args.auto_scale_lr, args.launcher)
    runner.train()


if __name__ == '__main__':
    main()
