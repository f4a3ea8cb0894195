"""Evaluate a checkpoint (same flags as mmdet's tools/test.py)."""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector with kd_det')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save evaluation results')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from kd_det.apis.runner import build_test_runner, set_local_rank
    set_local_rank(args.local_rank)
    runner = build_test_runner(args.config, args.checkpoint, args.work_dir, args.cfg_options,
                               args.out, args.launcher)
    runner.test()


if __name__ == '__main__':
    main()
