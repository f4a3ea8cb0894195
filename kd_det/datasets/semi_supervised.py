"""Labeled / unlabeled splits of a COCO training set for semi-supervised distillation.

One deterministic split (:func:`labeled_image_ids`) serves both the in-memory dataset and the
file-writing tool (:mod:`kd_det.datasets.split_labeled`)::

    labeled = dict(type='PartiallyLabeledCocoDataset', subset='labeled',
                   labeled_fraction=0.1, split_seed=0, ann_file='annotations/instances_train.json',
                   ...)
    unlabeled = dict(labeled, subset='unlabeled')   # the other 90 %, annotations dropped

Unlabeled samples carry ``labeled=False`` in their ``data_samples`` metainfo (set after the
pipeline, so any pipeline works, mmdet's ``MultiBranch`` included: every branch's sample is
flagged); :func:`is_labeled` reads it, and a sample without the key counts as labeled. That
flag is how ``SemiSupervisedDetectionDistill`` keeps unlabeled images out of the student's task
loss.
"""
import os.path as osp
from typing import Iterable, List, Set

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine import fileio

LABELED_KEY = 'labeled'
SUBSETS = ('labeled', 'unlabeled')


def is_labeled(data_sample) -> bool:
    """Whether a ``DetDataSample`` has usable annotations (no ``labeled`` flag: labeled)."""
    return bool(data_sample.metainfo.get(LABELED_KEY, True))


def labeled_image_ids(image_ids: Iterable[int], fraction: float, seed: int = 0) -> Set[int]:
    """The image ids treated as labeled: ``round(fraction * n)`` of them (at least one when
    ``fraction > 0``), drawn by a seeded permutation of the sorted ids.

    The same ids, fraction and seed always give the same split, whatever order the ids come in.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f'labeled fraction must be in [0, 1], got {fraction}')
    ids = sorted(set(image_ids))
    count = int(round(fraction * len(ids)))
    if fraction > 0 and ids:
        count = max(count, 1)
    order = np.random.RandomState(seed).permutation(len(ids))
    return {ids[i] for i in order[:count]}


@DATASETS.register_module()
class PartiallyLabeledCocoDataset(CocoDataset):
    """A COCO dataset restricted to its labeled or its unlabeled part.

    ``subset='labeled'`` keeps the images :func:`labeled_image_ids` picks, with their
    annotations. ``subset='unlabeled'`` keeps the others and reads only the ``images`` list of
    the annotation file (so image-info files without annotations, e.g. COCO's
    ``image_info_unlabeled2017.json`` with ``labeled_fraction=0``, work too): every sample has
    no instances and ``labeled=False`` in its metainfo.

    Args:
        labeled_fraction (float): fraction of the annotation file's images that is labeled.
            Defaults to 1.0.
        split_seed (int): seed of the split. Defaults to 0.
        subset (str): ``'labeled'`` or ``'unlabeled'``. Defaults to ``'labeled'``.
        Others: as :class:`mmdet.datasets.CocoDataset`.
    """

    def __init__(self, *args, labeled_fraction: float = 1.0, split_seed: int = 0,
                 subset: str = 'labeled', **kwargs):
        if subset not in SUBSETS:
            raise ValueError(f'subset must be one of {SUBSETS}, got {subset!r}')
        if not 0.0 <= labeled_fraction <= 1.0:
            raise ValueError(f'labeled_fraction must be in [0, 1], got {labeled_fraction}')
        self.labeled_fraction = labeled_fraction
        self.split_seed = split_seed
        self.subset = subset
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.subset == 'labeled':
            data_list = super().load_data_list()
            keep = labeled_image_ids([info['img_id'] for info in data_list],
                                     self.labeled_fraction, self.split_seed)
            return [info for info in data_list if info['img_id'] in keep]
        images = fileio.load(self.ann_file, backend_args=self.backend_args)['images']
        labeled = labeled_image_ids([img['id'] for img in images], self.labeled_fraction,
                                    self.split_seed)
        img_prefix = self.data_prefix.get('img', '')
        return [dict(img_path=osp.join(img_prefix, img['file_name']),
                     img_id=img['id'], width=img['width'], height=img['height'],
                     seg_map_path=None, instances=[])
                for img in images if img['id'] not in labeled]

    def filter_data(self) -> List[dict]:
        if self.subset == 'labeled' or self.test_mode or self.filter_cfg is None:
            return super().filter_data()
        min_size = self.filter_cfg.get('min_size', 0)
        return [info for info in self.data_list
                if min(info['width'], info['height']) >= min_size]

    def prepare_data(self, idx: int):
        results = super().prepare_data(idx)
        if self.subset == 'unlabeled' and isinstance(results, dict) and \
                'data_samples' in results:
            samples = results['data_samples']
            # mmdet's MultiBranch packs one sample per branch (None for a branch it skips)
            branches = samples.values() if isinstance(samples, dict) else [samples]
            for sample in branches:
                if sample is not None:
                    sample.set_metainfo({LABELED_KEY: False})
        return results
