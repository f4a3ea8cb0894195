"""Where eager PyTorch inference spends its time, for one or more detector configs.

    python tools/profile_ops.py configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py \
        configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py --parts neck all

Prints the batch-1, one-thread latency of each part (backbone, neck, head, all; every model
and part interleaved, medians) and each part's costliest ops from ``torch.profiler``. Weights
are random: latency depends on the architecture only (a distillation config: its student).
``--optimized`` adds each model as a deployment would run it eagerly (conv + BN folded,
channels-last; ``kd_det/deploy/eager_inference.py``), as a second column "<name> +fused NHWC".
"""
import argparse
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='kd_det eager-inference op profile')
    parser.add_argument('configs', nargs='+', help='detector or distillation configs')
    parser.add_argument('--parts', nargs='+', default=['neck', 'all'],
                        help='backbone, neck, head and/or all (default: neck all)')
    parser.add_argument('--input-shape', type=int, nargs=3, default=[3, 160, 160],
                        metavar=('C', 'H', 'W'))
    parser.add_argument('--repeats', type=int, default=100, help='timed runs per part')
    parser.add_argument('--top', type=int, default=8, help='ops listed per part')
    parser.add_argument('--optimized', action='store_true',
                        help='also profile each model with conv + BN folded and channels-last')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for every config')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.apis.student import build_student
    from kd_det.deploy.op_profile import profile_markdown, profile_models
    names = [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(set(names)) != len(names):
        names = args.configs
    models = {name: build_student(config, cfg_options=args.cfg_options)
              for name, config in zip(names, args.configs)}
    if args.optimized:
        from kd_det.deploy.eager_inference import optimize_for_eager_inference
        models.update({f'{name} +fused NHWC': optimize_for_eager_inference(model)
                       for name, model in list(models.items())})
    results = profile_models(models, tuple(args.input_shape), args.parts, args.repeats,
                             args.top)
    print(profile_markdown(results))


if __name__ == '__main__':
    main()
