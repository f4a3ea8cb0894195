"""Channel-wise spatial distribution KL (CWD), optionally restricted to a region and biased.

Each channel of a dense map is turned into a distribution over locations with a spatial softmax,
and the student's distribution is matched to the teacher's with KL(teacher || student). Unlike a
per-location softmax over channels, this carries signal even where the values are tiny (near-zero
class probabilities, background features): only *where* a channel is relatively high matters.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def channel_spatial_kl(student: Tensor, teacher: Tensor, mask: Optional[Tensor] = None,
                       bias: Optional[Tensor] = None, temperature: float = 1.0,
                       per_location: bool = False) -> Tensor:
    """KL(teacher || student) of per-channel spatial softmaxes, one value per image and channel.

    ``p_c = softmax_{h,w}(x_c / T + bias)`` over the locations where ``mask`` is True, for
    student and teacher alike, and ``KL(p_c^t || p_c^s) * T**2``. The same ``bias`` on both
    sides re-weights locations (a location with a higher bias takes a larger share of both
    distributions) while the optimum stays ``student = teacher``.

    Args:
        student: (N, C, H, W) student map (features or logits), already aligned to the teacher.
        teacher: (N, C, H, W) teacher map.
        mask: (N, H, W) bool, the locations that take part; None for the whole map. An image
            with no location in the mask gets 0 for every channel.
        bias: (N, H, W) additive bias on both sides' logits, or None.
        temperature: ``T`` > 0.
        per_location: return each location's share of the KL instead of the sum (for
            pictures: where the two distributions disagree).

    Returns:
        (N, C) KL per image and channel, >= 0, attached to the student's graph; with
        ``per_location`` (N, C, H, W) terms that sum to it over (H, W).
    """
    if student.shape != teacher.shape:
        raise ValueError(f'student map {tuple(student.shape)} and teacher map '
                         f'{tuple(teacher.shape)} differ; align them (connector/resize) first')
    if temperature <= 0:
        raise ValueError(f'temperature must be positive, got {temperature}')
    n, c, h, w = student.shape
    s_logits = student.float() / temperature
    t_logits = teacher.float() / temperature
    if bias is not None:
        if bias.shape != (n, h, w):
            raise ValueError(f'bias must be (N, H, W) = {(n, h, w)}, got {tuple(bias.shape)}')
        s_logits = s_logits + bias[:, None].float()
        t_logits = t_logits + bias[:, None].float()
    s_logits, t_logits = s_logits.flatten(2), t_logits.flatten(2)  # (N, C, HW)
    if mask is not None:
        if mask.shape != (n, h, w):
            raise ValueError(f'mask must be (N, H, W) = {(n, h, w)}, got {tuple(mask.shape)}')
        keep = mask.flatten(1)[:, None].expand_as(s_logits)
        # masked_fill to a large negative number, not -inf: an all-False image stays finite
        s_logits = s_logits.masked_fill(~keep, -1e4)
        t_logits = t_logits.masked_fill(~keep, -1e4)
    log_ps = F.log_softmax(s_logits, dim=2)
    log_pt = F.log_softmax(t_logits, dim=2)
    terms = log_pt.exp() * (log_pt - log_ps)
    if mask is not None:
        terms = terms * keep
    if per_location:
        return terms.view(n, c, h, w) * temperature**2
    kl = terms.sum(dim=2) * temperature**2
    if mask is not None:
        kl = kl * mask.flatten(1).any(dim=1)[:, None]
    return kl
