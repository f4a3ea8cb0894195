"""How much an unlabeled image's distillation losses count against a labeled image's.

Semi-supervised detectors weight their unsupervised losses by a constant (Soft Teacher and
Unbiased Teacher: 4 against the supervised loss), often raised from 0 over the first iterations
(the sigmoid ramp-up of Laine & Aila, ICLR 2017, used by Mean Teacher). kd_det applies the same
two knobs per image: ``image_loss_weights`` gives each image of a batch its factor, which the
distiller multiplies into that image's share of every distillation term.
"""
import math
from typing import Sequence

import torch
from torch import Tensor


def sigmoid_rampup(iteration: int, rampup_iters: int) -> float:
    """``exp(-5 * (1 - t)^2)`` with ``t = min(iteration / rampup_iters, 1)``.

    Starts at ``exp(-5) ~ 0.007``, reaches 0.5 at ``t ~ 0.63`` and 1 at ``t = 1``;
    ``rampup_iters = 0`` means no ramp (1 from the first iteration).
    """
    if rampup_iters < 0 or iteration < 0:
        raise ValueError(f'iteration and rampup_iters must be >= 0, got {iteration} and '
                         f'{rampup_iters}')
    if rampup_iters == 0:
        return 1.0
    progress = min(iteration / rampup_iters, 1.0)
    return math.exp(-5.0 * (1.0 - progress) ** 2)


def image_loss_weights(labeled: Sequence[bool], unlabeled_weight: float,
                       device=None) -> Tensor:
    """(N,) per-image factors of the distillation losses: 1 for a labeled image,
    ``unlabeled_weight`` (already ramped) for an unlabeled one."""
    return torch.tensor([1.0 if flag else float(unlabeled_weight) for flag in labeled],
                        device=device)
