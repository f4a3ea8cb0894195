"""Soft-label classification distillation: the student learns the teacher's probabilities."""
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


def soft_label_loss(student_logits: Tensor, teacher_logits: Tensor, use_sigmoid: bool,
                    gamma: float = 2.0, temperature: float = 1.0) -> Tensor:
    """Per-location soft-label loss of a dense classifier.

    Sigmoid heads: :func:`soft_focal_bce` of ``s / T`` toward ``sigmoid(t / T)``; softmax heads
    (background last): KL(teacher || student) of the softmax at temperature ``T``. Both are
    multiplied by ``T**2`` so gradients keep their scale.

    Args:
        student_logits, teacher_logits: (..., K) logits.
        use_sigmoid: which kind of classifier.
        gamma: focusing exponent of the sigmoid form.
        temperature: ``T`` > 0.

    Returns:
        (...) loss per location.
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be positive, got {temperature}')
    if not use_sigmoid:
        return softmax_kl(student_logits, teacher_logits, temperature)
    teacher_probs = (teacher_logits.float() / temperature).sigmoid()
    return soft_focal_bce(student_logits.float() / temperature, teacher_probs,
                          gamma) * temperature**2
