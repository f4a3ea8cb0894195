"""Split a COCO training set into a labeled subset and an unlabeled image list.

    python -m kd_det.datasets.split_labeled --ann data/synthetic/annotations/instances_train.json \
        --fraction 0.1 --seed 0

writes ``instances_train.labeled@10.json`` (the labeled images and their annotations) and
``instances_train.unlabeled@10.json`` (the other images, no annotations) next to ``--ann``. The
split is the one ``PartiallyLabeledCocoDataset`` makes in memory with the same fraction and
seed, so configs can use either.
"""
import argparse
import json
import os.path as osp
from typing import Dict, Optional, Tuple

from kd_det.datasets.semi_supervised import labeled_image_ids


def split_coco(coco: Dict, fraction: float, seed: int = 0) -> Tuple[Dict, Dict]:
    """``(labeled, unlabeled)`` COCO dicts; both keep every other top-level key (categories,
    info, ...), the unlabeled one has an empty ``annotations`` list."""
    labeled_ids = labeled_image_ids([img['id'] for img in coco['images']], fraction, seed)
    labeled = dict(coco)
    labeled['images'] = [img for img in coco['images'] if img['id'] in labeled_ids]
    labeled['annotations'] = [ann for ann in coco.get('annotations', [])
                              if ann['image_id'] in labeled_ids]
    unlabeled = dict(coco)
    unlabeled['images'] = [img for img in coco['images'] if img['id'] not in labeled_ids]
    unlabeled['annotations'] = []
    return labeled, unlabeled


def split_file(ann_file: str, fraction: float, seed: int = 0,
               out_dir: Optional[str] = None) -> Tuple[str, str]:
    """Split ``ann_file`` and write the two files; returns their paths."""
    with open(ann_file) as f:
        coco = json.load(f)
    labeled, unlabeled = split_coco(coco, fraction, seed)
    stem = osp.splitext(osp.basename(ann_file))[0]
    percent = f'{100 * fraction:g}'
    out_dir = out_dir or osp.dirname(ann_file)
    paths = (osp.join(out_dir, f'{stem}.labeled@{percent}.json'),
             osp.join(out_dir, f'{stem}.unlabeled@{percent}.json'))
    for path, content in zip(paths, (labeled, unlabeled)):
        with open(path, 'w') as f:
            json.dump(content, f)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ann', required=True, help='COCO annotation file to split')
    parser.add_argument('--fraction', type=float, required=True,
                        help='fraction of images that stay labeled, e.g. 0.1')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', help='where to write (default: next to --ann)')
    args = parser.parse_args(argv)
    if not 0.0 <= args.fraction <= 1.0:
        parser.error('--fraction must be in [0, 1]')
    for path in split_file(args.ann, args.fraction, args.seed, args.out_dir):
        print(path)


if __name__ == '__main__':
    main()
