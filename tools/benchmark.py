"""Train, evaluate and time the methods of a benchmark spec over seeds.

    python tools/benchmark.py configs/benchmark/embedded.py --seeds 0 1 2

writes ``results.csv`` (one row per run), ``results.md`` (mean ± std over seeds) and
``map_vs_latency.png`` into the spec's ``work_root``. Re-running skips finished runs.
"""
import argparse

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='kd_det benchmark: one command, one table')
    parser.add_argument('spec', help='benchmark spec config (configs/benchmark/*.py)')
    parser.add_argument('--seeds', type=int, nargs='+', help='seeds (default: the spec\'s)')
    parser.add_argument('--work-root', help='where runs and reports go (default: the spec\'s)')
    parser.add_argument('--only', nargs='+',
                        help='train only these methods (the report lists every method with '
                             'results)')
    parser.add_argument('--epochs', type=int,
                        help='override every method\'s epochs (quick checks; not comparable '
                        'with the spec\'s schedule)')
    parser.add_argument('--data-root',
                        help='a COCO-format dataset laid out like the embedded one '
                        '(annotations/instances_{train,val}.json); use --cfg-options for '
                        'other layouts and class names')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides applied to every run')
    parser.add_argument('--amp', action='store_true', help='train every run with --amp')
    parser.add_argument('--jobs', type=int, default=1,
                        help='training runs in parallel (each gets cpus/jobs threads)')
    parser.add_argument('--skip-measure', action='store_true',
                        help='skip params/FLOPs/latency/step-time measurements')
    parser.add_argument('--latency-repeats', type=int, default=50)
    parser.add_argument('--remeasure', action='store_true',
                        help='ignore cached measurements and measure every method again, '
                        'side by side (e.g. after the machine was busy)')
    parser.add_argument('--deploy-only', action='store_true',
                        help='train nothing: params, FLOPs and PyTorch/onnxruntime latency of '
                        'every method\'s network at random weights, side by side')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.benchmark import Benchmark, markdown_table
    from kd_det.benchmark.options import dataset_options, schedule_options
    options = dict(args.cfg_options or {})
    if args.data_root:
        options.update(dataset_options(args.data_root))
    spec = Config.fromfile(args.spec)
    bench = Benchmark(spec, seeds=args.seeds, work_root=args.work_root, cfg_options=options,
                      only=args.only, train_args=['--amp'] if args.amp else [])
    if args.epochs:
        for method in bench.methods:
            method.cfg_options.update(schedule_options(args.epochs))
    if args.deploy_only:
        from kd_det.benchmark.measurements import measure_untrained
        from kd_det.deploy.latency import latency_markdown
        print(latency_markdown(measure_untrained(bench, args.latency_repeats)))
        return
    bench.run(args.jobs)
    if spec.get('prune'):  # prune + fine-tune a trained method (see kd_det.pruning.prune_chain)
        if any(m.name == spec.prune.source for m in bench.methods):
            from kd_det.pruning.prune_chain import run_prune_chain
            run_prune_chain(bench, **spec.prune)
        else:
            print(f'prune chain skipped: its source {spec.prune.source!r} is not in --only',
                  flush=True)
    measurements = None if args.skip_measure else bench.measure(
        args.latency_repeats, remeasure=args.remeasure)
    rows = bench.rows(measurements)
    paths = bench.write_reports(rows)
    print(markdown_table(rows))
    if 'paired' in paths:
        with open(paths['paired']) as f:
            print('\nPaired by seed:\n' + f.read())
    for kind, path in paths.items():
        print(f'{kind}: {path}')


if __name__ == '__main__':
    main()
