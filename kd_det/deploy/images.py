"""Real images, prepared exactly as a deployed network receives them.

The detector config's test pipeline loads and resizes each image, and its data preprocessor
normalises and pads it; the result is the (1, 3, H, W) float32 array every backend takes. Used
for INT8 calibration (training split) and export parity checks (validation split).
"""
import copy
from typing import Iterator, Tuple

import numpy as np
from mmengine.config import Config

SPLITS = ('train', 'val', 'test')


def _innermost_dataset(dataset_cfg) -> dict:
    """A dataset config without its wrappers (RepeatDataset, FaultTolerantDataset, ...)."""
    dataset_cfg = copy.deepcopy(dataset_cfg)
    while 'dataset' in dataset_cfg and 'ann_file' not in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    if 'datasets' in dataset_cfg:  # ConcatDataset: the first one
        dataset_cfg = dataset_cfg['datasets'][0]
    return dataset_cfg


def prepared_images(cfg: Config, split: str = 'train', num_images: int = 64,
                    seed: int = 0) -> Iterator[Tuple[np.ndarray, object]]:
    """``num_images`` images of ``split`` (spread over the split with a fixed seed) as the
    network sees them.

    Yields:
        ``(image, data_sample)``: (1, 3, H, W) float32 normalised and padded image, and the
        packed :class:`mmdet.structures.DetDataSample` (its metainfo: ``img_path``,
        ``scale_factor``, ...).
    """
    from mmdet.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    init_default_scope('mmdet')
    dataset_cfg = _innermost_dataset(cfg[f'{split}_dataloader']['dataset'])
    dataset_cfg['pipeline'] = cfg.test_dataloader.dataset.pipeline
    dataset_cfg['test_mode'] = True
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise ValueError(f'the {split} split of the config has no images')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    order = np.random.default_rng(seed).permutation(len(dataset))[:num_images]
    for index in order:
        packed = dataset[int(index)]
        data = preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
                            training=False)
        yield data['inputs'].numpy().astype(np.float32), data['data_samples'][0]
