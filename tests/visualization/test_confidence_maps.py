"""The confidence picture: per-level maps with the right shapes, a PNG, and the CLI."""
import os.path as osp
import sys

import numpy as np

from conftest import REPO_ROOT
from models.tiny_detectors import build_distill, fake_batch
from kd_det.visualization.confidence_maps import (collect_confidence_maps, combine_levels,
                                                  draw_confidence_maps)

CSL_CONFIG = osp.join(REPO_ROOT, 'configs/confidence_soft_label/csl_retinanet_mnv2_embedded.py')


def test_maps_per_image_and_level_and_png(tmp_path):
    algorithm = build_distill('retinanet', 'retinanet',
                              dict(type='ConfidenceSoftLabelDistiller', region='topk'))
    inputs, samples = fake_batch(batch_size=2, height=64, width=96)
    entries = collect_confidence_maps(algorithm, inputs, samples)
    assert len(entries) == 2 and algorithm.training  # the mode is restored
    entry = entries[0]
    assert entry['image'].shape == (64, 96, 3) and entry['image'].dtype == np.uint8
    assert entry['confidence/0'].shape == (8, 12)  # stride 8 on a 64 x 96 input
    assert entry['confidence/0'].min() >= 0 and entry['confidence/0'].max() <= 1
    assert set(np.unique(entry['region/0'])) <= {0.0, 1.0}
    selected = sum(entry[f'region/{level}'].sum() for level in range(5))
    assert selected >= 1  # top-k keeps at least one cell
    assert (entry['weight/0'][entry['region/0'] == 0] == 0).all()
    assert combine_levels(entry, 'confidence', (64, 96)).shape == (64, 96)
    out = tmp_path / 'conf.png'
    draw_confidence_maps(entry, str(out), title='test')
    assert out.stat().st_size > 10_000


def test_cli_draws_an_unlabeled_image(tiny_dataset, tmp_path):
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    try:
        from visualize_confidence import main
    finally:
        sys.path.pop(0)
    image = osp.join(tiny_dataset, 'val', '000000.png')
    out = tmp_path / 'vis' / 'conf.png'
    main([CSL_CONFIG, '--img', image, '--out', str(out), '--cfg-options',
          'model.teacher_ckpt=None', 'model.distiller.region=topk'])
    assert out.stat().st_size > 10_000
