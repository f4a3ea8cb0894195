"""Group lasso over channel groups, and its proximal operator (exact zeros for pruning).

A row of ``channel_rows`` (C, k) holds everything that makes one channel: e.g. the BN scale and
shift of that channel in every norm layer of a coupled group. Plain L1 (network slimming) is the
special case of one entry per row: ``rows.reshape(-1, 1)``.
"""
import math

import torch
from torch import Tensor


def group_lasso(channel_rows: Tensor) -> Tensor:
    """``sqrt(k) * sum_c ||rows[c]||_2`` for (C, k) rows (the usual sqrt(group size) weight).

    Its subgradient is ``sqrt(k) * rows[c] / ||rows[c]||`` (0 for an all-zero row), so it pulls
    every entry of a channel toward zero together, at the same rate for every group size when
    measured on the root-mean-square of the row.
    """
    return math.sqrt(channel_rows.shape[1]) * torch.linalg.vector_norm(channel_rows, dim=1).sum()


def group_lasso_prox(channel_rows: Tensor, step: float) -> Tensor:
    """Proximal operator of ``step * group_lasso``: group soft-thresholding.

    ``rows[c] * max(0, 1 - step * sqrt(k) / ||rows[c]||)``: a row whose norm is at most
    ``step * sqrt(k)`` becomes exactly zero, the others shrink toward zero by that much.
    """
    threshold = step * math.sqrt(channel_rows.shape[1])
    norms = torch.linalg.vector_norm(channel_rows, dim=1, keepdim=True)
    factor = torch.clamp(1.0 - threshold / norms.clamp_min(1e-12), min=0.0)
    return channel_rows * factor


def relu_l1_prox(weights: Tensor, step: float) -> Tensor:
    """Proximal operator of ``step * sum ReLU(w)`` for fusion weights used as ``ReLU(w)``.

    Positive weights move ``step`` toward zero and stop at exactly zero; weights at or below
    zero already contribute nothing and are left as they are.
    """
    return torch.where(weights > 0, torch.clamp(weights - step, min=0.0), weights)
