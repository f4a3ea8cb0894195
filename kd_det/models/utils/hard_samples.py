"""Adaptive hard-sample weights: less weight where the teacher is unsure, more where the student
lags behind the teacher, bounded so that no sample dominates.

Weights are computed over a flat batch of samples (N images, M locations each); the distiller
concatenates its feature levels into M.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor


def hard_sample_scores(reliability: Tensor, discrepancy: Tensor, teacher_power: float = 1.0,
                       student_power: float = 1.0, eps: float = 0.1) -> Tensor:
    """Unnormalised weights ``reliability^tp * (discrepancy + eps)^sp``.

    A teacher-hard sample (low or ambiguous teacher confidence, i.e. low ``reliability``) gets
    less weight; a student-hard one (large student-teacher ``discrepancy``) more. ``eps`` keeps
    samples the student already imitates from vanishing entirely.

    Args:
        reliability: (N, M) teacher reliability in [0, 1].
        discrepancy: (N, M) student-teacher discrepancy in [0, 1].

    Returns:
        (N, M) non-negative scores, increasing in both inputs.
    """
    if eps <= 0:
        raise ValueError(f'eps must be positive, got {eps}')
    return reliability.clamp(min=0).pow(teacher_power) * (discrepancy.clamp(min=0) + eps).pow(
        student_power)


def balance_weights(scores: Tensor, mask: Tensor, w_min: float = 0.25,
                    w_max: float = 4.0) -> Tensor:
    """Scores normalised to mean 1 over the masked samples of the whole batch, then clamped.

    Normalising over the batch, not per image, keeps the image level: an image whose samples
    are all teacher-hard gets less total weight than one where the teacher is sure. Clamping to
    ``[w_min, w_max]`` bounds every weight, so the mean is 1 up to the clamped excess.

    Args:
        scores: (N, M) non-negative scores.
        mask: (N, M) bool, the samples that take part.

    Returns:
        (N, M) weights, 0 outside the mask; all ones on the mask when every score is 0.
    """
    if not 0 <= w_min <= 1 <= w_max:
        raise ValueError(f'need 0 <= w_min <= 1 <= w_max, got [{w_min}, {w_max}]')
    mask = mask.bool()
    if not mask.any():
        return torch.zeros_like(scores)
    mean = scores[mask].mean()
    if mean <= 0:
        return mask.to(scores.dtype)
    weights = (scores / mean).clamp(min=w_min, max=w_max)
    return weights * mask


def geometric_balance_weights(scores: Tensor, mask: Tensor, power: float = 0.5,
                              w_min: float = 0.25, w_max: float = 4.0,
                              eps: float = 1e-6) -> Tensor:
    """Scores divided by their geometric mean over the masked samples, compressed, clamped.

    ``w = (s / geomean(s)) ** power``, computed in the log domain. Unlike the arithmetic mean of
    :func:`balance_weights`, the geometric mean is not pulled up by a few large scores nor down
    by many small ones in a way that pins the rest at a bound, and ``power < 1`` compresses the
    spread, so the ``[w_min, w_max]`` clamp stays a safety bound that few samples reach. As
    there, the normalisation is over the whole batch, not per image.

    Args:
        scores: (N, M) non-negative scores.
        mask: (N, M) bool, the samples that take part.
        power: compression exponent > 0 (1 keeps the score ratios).
        w_min, w_max: bounds, ``0 <= w_min <= 1 <= w_max``.
        eps: scores are floored at ``eps`` before the logarithm, so a zero score gives a small
            weight instead of ``-inf``.

    Returns:
        (N, M) weights, 0 outside the mask; all ones on the mask when every score is 0.
    """
    if not 0 <= w_min <= 1 <= w_max:
        raise ValueError(f'need 0 <= w_min <= 1 <= w_max, got [{w_min}, {w_max}]')
    if power <= 0:
        raise ValueError(f'power must be positive, got {power}')
    if eps <= 0:
        raise ValueError(f'eps must be positive, got {eps}')
    mask = mask.bool()
    if not mask.any():
        return torch.zeros_like(scores)
    log_scores = scores.clamp(min=eps).log()
    log_ratio = log_scores - log_scores[mask].mean()
    weights = (power * log_ratio).exp().clamp(min=w_min, max=w_max)
    return weights * mask


def weight_statistics(weights: Tensor, mask: Tensor,
                      bounds: Optional[Tuple[float, float]] = None) -> Dict[str, Tensor]:
    """Mean/min/max of the weights over the mask, and min/max of the per-image mean weight.

    Args:
        weights, mask: (N, M).
        bounds: ``(w_min, w_max)`` the weights were clamped to, or None.

    Returns:
        ``mean``, ``min``, ``max``, ``img_min``, ``img_max`` as 0-dim tensors (0 when the mask
        is empty); images without masked samples are left out of the per-image values. With
        ``bounds`` also ``at_min`` and ``at_max``: the fraction of masked samples at each bound
        (a weight that sits there often means the bound, not the data, decides).
    """
    mask = mask.bool()
    zero = weights.new_zeros(())
    keys = ('mean', 'min', 'max', 'img_min', 'img_max') + \
        (() if bounds is None else ('at_min', 'at_max'))
    if not mask.any():
        return {key: zero for key in keys}
    selected = weights[mask]
    per_image_count = mask.sum(dim=1)
    has_any = per_image_count > 0
    per_image = (weights * mask).sum(dim=1)[has_any] / per_image_count[has_any]
    stats = dict(mean=selected.mean(), min=selected.min(), max=selected.max(),
                 img_min=per_image.min(), img_max=per_image.max())
    if bounds is not None:
        stats['at_min'] = (selected <= bounds[0]).float().mean()
        stats['at_max'] = (selected >= bounds[1]).float().mean()
    return stats
