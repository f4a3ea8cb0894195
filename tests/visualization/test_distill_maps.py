"""The distillation picture: maps per level with the right shapes, and a PNG on disk."""
import numpy as np
import pytest
import torch

from models.tiny_detectors import build_distill, fake_batch
from kd_det.visualization.distill_maps import collect_distill_maps, draw_distill_maps


@pytest.mark.parametrize('options,gate_values', [
    (dict(), {0.5, 1.0}),  # v2: a closed gate leaves the floor
    (dict(fg_mode='all_levels', gate_quality='score', gate_floor=0.0), {0.0, 1.0}),  # v1
])
def test_maps_per_image_and_level_and_png(tmp_path, options, gate_values):
    algorithm = build_distill('retinanet', 'retinanet',
                              dict(type='DecoupledCosineDistiller', gate='hard', **options))
    _, samples = fake_batch(batch_size=1, height=64, width=96)
    image = (torch.rand(3, 64, 96) * 255).to(torch.uint8)
    entries = collect_distill_maps(algorithm, dict(inputs=[image], data_samples=samples))
    assert len(entries) == 1
    entry = entries[0]
    assert entry['image'].shape == (64, 96, 3) and entry['image'].dtype == np.uint8
    assert entry['fg_weight/0'].shape == (8, 12)  # stride 8 on a 64 x 96 input
    gate = entry['gate/0']
    assert set(np.unique(gate)).issubset(gate_values)
    total = sum(entry[f'fg_weight/{level}'].sum() for level in range(5))
    assert total > 0
    if not options:  # v2: each of the 2 objects carries a weight of 1 over its levels
        assert total == pytest.approx(2.0, rel=1e-5)
    out = tmp_path / 'maps.png'
    draw_distill_maps(entry, str(out), levels=[0, 1])
    assert out.stat().st_size > 10_000
