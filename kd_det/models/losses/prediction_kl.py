"""KL divergence between dense classification predictions, for sigmoid and softmax heads."""
import torch
import torch.nn.functional as F
from torch import Tensor


def sigmoid_kl(student_logits: Tensor, teacher_logits: Tensor,
               temperature: float = 1.0) -> Tensor:
    """KL(teacher || student) of independent per-class Bernoulli outputs, summed over classes.

    Sigmoid heads (RetinaNet, FCOS, ATSS, GFL) predict one Bernoulli per class, so the
    divergence is the sum of per-class Bernoulli KLs, not a softmax KL over classes.

    Args:
        student_logits, teacher_logits: (..., K) logits for K classes.
        temperature: logits are divided by T; the result is multiplied by T**2 so gradients
            keep their scale.

    Returns:
        (...) KL per location, >= 0.
    """
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
    # logsigmoid keeps log(p) and log(1-p) finite for large |logits| (no log(sigmoid(x))).
    log_ps, log_1m_ps = F.logsigmoid(s), F.logsigmoid(-s)
    log_pt, log_1m_pt = F.logsigmoid(t), F.logsigmoid(-t)
    pt = log_pt.exp()
    kl = pt * (log_pt - log_ps) + (1.0 - pt) * (log_1m_pt - log_1m_ps)
    return kl.sum(dim=-1) * temperature**2


def softmax_kl(student_logits: Tensor, teacher_logits: Tensor,
               temperature: float = 1.0) -> Tensor:
    """KL(teacher || student) of softmax distributions over the last axis.

    Args:
        student_logits, teacher_logits: (..., K) logits (for mmdet softmax heads K includes the
            background class).

    Returns:
        (...) KL per location, >= 0, multiplied by T**2.
    """
    log_ps = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_pt = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=-1)
    return kl * temperature**2


def prediction_kl(student_logits: Tensor, teacher_logits: Tensor, use_sigmoid: bool,
                  temperature: float = 1.0) -> Tensor:
    """Dispatch to :func:`sigmoid_kl` or :func:`softmax_kl`; shapes as there."""
    kl_fn = sigmoid_kl if use_sigmoid else softmax_kl
    return kl_fn(student_logits, teacher_logits, temperature)
