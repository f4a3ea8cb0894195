"""FLOPs, params and COCO mAP of the pruned detector of a GroupFisher run's checkpoint.

    python tools/group_fisher_report.py \
        configs/pruning/group_fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py DIR/epoch_4.pth

Builds the physically pruned detector from the checkpoint (weights + channel masks), prints its
FLOPs and params against the unpruned network and, unless ``--no-eval``, its COCO metrics on the
config's test split. (The run itself also leaves ``DIR/pruned/``: ``pruned.py`` + ``pruned.pth``
for ``tools/test.py`` and the exports.)
"""
import sys


def main(argv=None):
    import kd_det  # noqa: F401
    from kd_det.pruning.group_fisher_export import main as report
    return report(argv)


if __name__ == '__main__':
    main(sys.argv[1:])
