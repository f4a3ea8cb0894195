"""Soft-label classification distillation: the student learns the teacher's probabilities."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from .prediction_kl import softmax_kl


def soft_focal_bce(student_logits: Tensor, teacher_probs: Tensor, gamma: float = 2.0) -> Tensor:
    """Focal-style binary cross-entropy toward soft targets, summed over classes.

    ``BCE(sigmoid(s), t) * |sigmoid(s) - t|^gamma`` per class: the soft-target form of the
    focal loss (GFL's Quality Focal Loss with the teacher's probability as the quality). It is 0
    where the student already matches the teacher, and the modulating factor keeps the many
    easy background locations from swamping the few objects.

    Args:
        student_logits: (..., K) logits.
        teacher_probs: (..., K) target probabilities in [0, 1].
        gamma: focusing exponent (0 gives plain soft BCE).

    Returns:
        (...) loss per location, >= 0.
    """
    logits = student_logits.float()
    targets = teacher_probs.float()
    # binary_cross_entropy_with_logits is the log-sigmoid form: finite for any logit.
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    modulation = (logits.sigmoid() - targets).abs().pow(gamma)
    return (bce * modulation).sum(dim=-1)


def confidence_temperature(confidence: Tensor, temperature: float = 1.0,
                           sharpening: float = 0.0) -> Tensor:
    """Per-location temperature of the teacher's logits that falls as its confidence rises.

    ``T * (1 - sharpening * confidence)``: ``T`` where the teacher is unsure (confidence 0),
    ``T * (1 - sharpening)`` where it is sure (confidence 1), so a confident teacher's soft
    label approaches a hard one.

    Args:
        confidence: (...) teacher confidences in [0, 1].
        temperature: ``T`` > 0.
        sharpening: in [0, 1); 0 gives ``T`` everywhere.

    Returns:
        (...) temperatures in ``[T * (1 - sharpening), T]``.
    """
    if not 0.0 <= sharpening < 1.0:
        raise ValueError(f'sharpening must be in [0, 1), got {sharpening}')
    return temperature * (1.0 - sharpening * confidence.float().clamp(0.0, 1.0))


def soft_label_loss(student_logits: Tensor, teacher_logits: Tensor, use_sigmoid: bool,
                    gamma: float = 2.0, temperature: float = 1.0,
                    target_temperature: Optional[Tensor] = None) -> Tensor:
    """Per-location soft-label loss of a dense classifier.

    Sigmoid heads: :func:`soft_focal_bce` of ``s / T`` toward ``sigmoid(t / T_t)``; softmax heads
    (background last): KL(teacher || student) of ``softmax(t / T_t)`` and ``softmax(s / T)``.
    Both are multiplied by ``T**2`` so gradients keep their scale. ``T_t`` is ``T`` unless a
    per-location ``target_temperature`` is given: a smaller ``T_t`` sharpens the target toward
    a hard label there (e.g. where the teacher is confident), while the student's logits are
    still divided by ``T``, so the student is pulled toward the sharper target.

    Args:
        student_logits, teacher_logits: (..., K) logits.
        use_sigmoid: which kind of classifier.
        gamma: focusing exponent of the sigmoid form.
        temperature: ``T`` > 0.
        target_temperature: per-location ``T_t`` > 0 of the teacher's logits, a tensor
            broadcastable to the logits' shape without the class axis (...), or None for ``T``.

    Returns:
        (...) loss per location.
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be positive, got {temperature}')
    if target_temperature is None:
        if not use_sigmoid:
            return softmax_kl(student_logits, teacher_logits, temperature)
        teacher_probs = (teacher_logits.float() / temperature).sigmoid()
        return soft_focal_bce(student_logits.float() / temperature, teacher_probs,
                              gamma) * temperature**2
    if (target_temperature <= 0).any():
        raise ValueError('target_temperature must be positive everywhere')
    teacher_scaled = teacher_logits.float() / target_temperature.float().unsqueeze(-1)
    student_scaled = student_logits.float() / temperature
    if not use_sigmoid:
        log_ps = F.log_softmax(student_scaled, dim=-1)
        log_pt = F.log_softmax(teacher_scaled, dim=-1)
        return (log_pt.exp() * (log_pt - log_ps)).sum(dim=-1) * temperature**2
    return soft_focal_bce(student_scaled, teacher_scaled.sigmoid(), gamma) * temperature**2
