"""Teacher confidence per location from dense-head predictions, and how reliable it is.

All functions take the per-anchor class probabilities of :func:`kd_det.models.utils.gates.
dense_class_probs`, shape (N, A, K, H, W), and return per-anchor maps (N, A, H, W).
"""
from typing import Optional

import torch
from torch import Tensor


def max_class_probability(probs: Tensor, use_sigmoid: bool) -> Tensor:
    """Highest object-class probability per anchor.

    Args:
        probs: (N, A, K, H, W) class probabilities; for softmax heads the last of the K entries
            is background and is left out.
        use_sigmoid: whether the head is a per-class sigmoid head.

    Returns:
        (N, A, H, W) values in [0, 1].
    """
    return (probs if use_sigmoid else probs[:, :, :-1]).amax(dim=2)


def location_confidence(probs: Tensor, use_sigmoid: bool, quality_logits: Optional[Tensor] = None,
                        quality_power: float = 0.5) -> Tensor:
    """Teacher confidence that an anchor holds an object: ``p^(1 - a) * q^a``.

    ``p`` is the highest class probability; ``q = sigmoid(quality_logits)`` the head's
    localisation quality (centerness, IoU or objectness) where it has one, combined as in PGD's
    ``score^(1-a) * IoU^a``. ``a = 0.5`` is the geometric mean, which keeps a confidence
    threshold meaningful on the same scale as ``p``.

    Args:
        probs: (N, A, K, H, W) class probabilities.
        use_sigmoid: per-class sigmoid head (True) or softmax with background last (False).
        quality_logits: (N, A, H, W) or (N, 1, H, W) quality logits, or None.
        quality_power: ``a`` in [0, 1].

    Returns:
        (N, A, H, W) confidences in [0, 1].
    """
    confidence = max_class_probability(probs, use_sigmoid)
    if quality_logits is None:
        return confidence
    if not 0.0 <= quality_power <= 1.0:
        raise ValueError(f'quality_power must be in [0, 1], got {quality_power}')
    num_anchors = confidence.shape[1]
    if quality_logits.shape[1] not in (1, num_anchors) or \
            quality_logits.shape[-2:] != confidence.shape[-2:]:
        raise ValueError(f'quality logits {tuple(quality_logits.shape)} do not fit class '
                         f'predictions with {num_anchors} anchors on a '
                         f'{tuple(confidence.shape[-2:])} grid')
    quality = quality_logits.float().sigmoid()
    return confidence.pow(1.0 - quality_power) * quality.pow(quality_power)


def class_margin(probs: Tensor, use_sigmoid: bool) -> Tensor:
    """How clearly the best class beats the runner-up: ``1 - p2 / p1`` per anchor.

    1 when one class is alone (or the head has a single class), 0 when the two best classes tie
    (an ambiguous teacher).

    Returns:
        (N, A, H, W) values in [0, 1].
    """
    object_probs = probs if use_sigmoid else probs[:, :, :-1]
    if object_probs.shape[2] < 2:
        return torch.ones_like(object_probs[:, :, 0])
    top2 = object_probs.topk(2, dim=2).values
    return 1.0 - top2[:, :, 1] / top2[:, :, 0].clamp(min=1e-12)


def teacher_reliability(probs: Tensor, confidence: Tensor, use_sigmoid: bool) -> Tensor:
    """Confidence times class margin: low where the teacher is unsure *or* torn between classes.

    Args:
        probs: (N, A, K, H, W) teacher class probabilities.
        confidence: (N, A, H, W) from :func:`location_confidence`.

    Returns:
        (N, A, H, W) values in [0, 1]; small values mark teacher-hard samples.
    """
    return confidence * class_margin(probs, use_sigmoid)


def prediction_discrepancy(student_probs: Tensor, teacher_probs: Tensor) -> Tensor:
    """Largest per-class probability gap between student and teacher: ``max_k |p_s - p_t|``.

    Args:
        student_probs, teacher_probs: (N, A, K, H, W).

    Returns:
        (N, A, H, W) values in [0, 1]; large values mark student-hard samples.
    """
    return (student_probs - teacher_probs).abs().amax(dim=2)
