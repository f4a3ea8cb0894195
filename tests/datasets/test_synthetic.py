"""The embedded synthetic dataset: deterministic, valid COCO, boxes inside the images."""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest

from kd_det.datasets.synthetic import SYNTHETIC_CLASSES, generate_dataset, main


def _digest(root):
    h = hashlib.sha1()
    for split in ('train', 'val'):
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'rb') as f:
            h.update(f.read())
        with open(osp.join(root, split, '000003.png'), 'rb') as f:
            h.update(f.read())
    return h.hexdigest()


def test_same_seed_gives_identical_files_other_seed_differs(tmp_path):
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        generate_dataset(str(tmp_path / name), num_train=6, num_val=4, seed=seed)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')


def test_annotations_are_valid_coco_with_boxes_inside_images(tmp_path):
    from pycocotools.coco import COCO
    paths = generate_dataset(str(tmp_path), num_train=20, num_val=5, seed=3, img_size=128)
    coco = COCO(paths['train'])
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SYNTHETIC_CLASSES)
    assert len(coco.getImgIds()) == 20
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 20 * 2  # every image has at least two objects
    boxes = np.array([a['bbox'] for a in anns])
    assert (boxes[:, 2] > 0).all() and (boxes[:, 3] > 0).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= 128).all() and (boxes[:, 1] + boxes[:, 3] <= 128).all()
    # mostly small objects (COCO "small" is area < 32^2)
    assert np.mean(boxes[:, 2] * boxes[:, 3] < 32**2) > 0.5
    with open(paths['val']) as f:
        assert len(json.load(f)['images']) == 5


def test_cli_rejects_empty_splits(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['--out', str(tmp_path), '--num-train', '0'])
    assert 'at least 1' in capsys.readouterr().err
