"""Histogram of prunable channel scales (and fusion weights) of one or more checkpoints.

    python tools/analyze_sparsity.py CONFIG CKPT [CKPT ...] --out hist.png
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot channel scale histograms per checkpoint')
    parser.add_argument('config', help='the config the checkpoints were trained with')
    parser.add_argument('checkpoints', nargs='+', help='checkpoint(s), one curve each')
    parser.add_argument('--out', default='scale_histogram.png', help='PNG to write')
    parser.add_argument('--families', nargs='+', default=['neck', 'head', 'backbone'],
                        help='channel group families to show')
    parser.add_argument('--threshold', type=float, default=1e-3,
                        help='RMS scale at or below which a channel counts as sparse')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.pruning.sparsity_report import plot_scale_histograms
    summary = plot_scale_histograms(args.config, args.checkpoints, args.out, args.families,
                                    args.threshold)
    for label, fractions in summary.items():
        print(label + ': ' + ', '.join(f'{family} {100 * value:.1f}% sparse'
                                       for family, value in fractions.items()))
    print(f'histogram: {args.out}')


if __name__ == '__main__':
    main()
