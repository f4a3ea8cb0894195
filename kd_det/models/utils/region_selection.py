"""Which cells or anchors the teacher is confident about: a threshold or the top-k per image."""
from typing import List, Sequence

import torch
from torch import Tensor

REGION_MODES = ('threshold', 'topk')
REGION_UNITS = ('anchor', 'cell')


def select_confident_regions(confidence_maps: Sequence[Tensor], mode: str = 'threshold',
                             threshold: float = 0.5, topk_ratio: float = 0.01) -> List[Tensor]:
    """Boolean masks of the locations selected for distillation, per feature level.

    A location is whatever one entry of the maps stands for: a feature cell for (N, H_l, W_l)
    maps (e.g. each cell's best anchor), an anchor for (N, A, H_l, W_l) maps. ``'threshold'``
    keeps locations whose confidence is at least ``threshold``. ``'topk'`` keeps, per image, the
    ``k = max(1, round(topk_ratio * locations))`` most confident locations over *all* levels
    together (Dense Teacher's top-1 % selection), so every image contributes the same number of
    locations and a level is only represented when it is confident.

    Args:
        confidence_maps: per level (N, ...) teacher confidences, the same trailing layout on
            every level: (N, H_l, W_l) per cell or (N, A, H_l, W_l) per anchor.
        mode: ``'threshold'`` or ``'topk'``.
        threshold: minimum confidence in threshold mode.
        topk_ratio: fraction of all locations of an image kept in top-k mode, in (0, 1].

    Returns:
        Per level bool masks of the shapes of ``confidence_maps``.
    """
    if mode not in REGION_MODES:
        raise ValueError(f'region mode must be one of {REGION_MODES}, got {mode!r}')
    if mode == 'threshold':
        return [conf >= threshold for conf in confidence_maps]
    if not 0.0 < topk_ratio <= 1.0:
        raise ValueError(f'topk_ratio must be in (0, 1], got {topk_ratio}')
    flat = torch.cat([conf.flatten(1) for conf in confidence_maps], dim=1)  # (N, M)
    k = min(flat.shape[1], max(1, int(round(topk_ratio * flat.shape[1]))))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, flat.topk(k, dim=1).indices, True)
    sizes = [conf[0].numel() for conf in confidence_maps]
    return [part.view_as(conf) for part, conf in zip(mask.split(sizes, dim=1), confidence_maps)]


def select_region_anchors(anchor_confidences: Sequence[Tensor], unit: str = 'anchor',
                          mode: str = 'threshold', threshold: float = 0.5,
                          topk_ratio: float = 0.01) -> List[Tensor]:
    """Per-anchor region masks, selected per anchor or per feature cell.

    ``unit='anchor'``: an anchor is in the region when its *own* confidence passes
    (:func:`select_confident_regions` on the anchor maps; top-k counts anchors). ``unit='cell'``:
    a cell is selected by its best anchor's confidence (top-k counts cells) and every anchor of
    a selected cell is in the region, also the ones the teacher is not confident about.

    Args:
        anchor_confidences: per level (N, A, H_l, W_l) teacher confidences.
        unit: ``'anchor'`` or ``'cell'``.
        mode, threshold, topk_ratio: as :func:`select_confident_regions`.

    Returns:
        Per level (N, A, H_l, W_l) bool masks.
    """
    if unit not in REGION_UNITS:
        raise ValueError(f'region unit must be one of {REGION_UNITS}, got {unit!r}')
    if unit == 'anchor':
        return select_confident_regions(anchor_confidences, mode, threshold, topk_ratio)
    cells = select_confident_regions([conf.amax(dim=1) for conf in anchor_confidences], mode,
                                     threshold, topk_ratio)
    return [cell[:, None].expand_as(conf) for cell, conf in zip(cells, anchor_confidences)]
