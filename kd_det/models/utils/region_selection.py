"""Which feature cells the teacher is confident about: a threshold or the top-k per image."""
from typing import List, Sequence

import torch
from torch import Tensor

REGION_MODES = ('threshold', 'topk')


def select_confident_regions(confidence_maps: Sequence[Tensor], mode: str = 'threshold',
                             threshold: float = 0.5, topk_ratio: float = 0.01) -> List[Tensor]:
    """Boolean masks of the cells selected for distillation, per feature level.

    ``'threshold'`` keeps cells whose confidence is at least ``threshold``. ``'topk'`` keeps,
    per image, the ``k = max(1, round(topk_ratio * cells))`` most confident cells over *all*
    levels together (Dense Teacher's top-1 % selection), so every image contributes the same
    number of cells and a level is only represented when it is confident.

    Args:
        confidence_maps: per level (N, H_l, W_l) teacher confidences.
        mode: ``'threshold'`` or ``'topk'``.
        threshold: minimum confidence in threshold mode.
        topk_ratio: fraction of all cells of an image kept in top-k mode, in (0, 1].

    Returns:
        Per level (N, H_l, W_l) bool masks.
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
