"""Per-location feature imitation distance that ignores the two networks' feature scales."""
from torch import Tensor


def standardized_feature_distance(student: Tensor, teacher: Tensor, eps: float = 1e-6) -> Tensor:
    """Half the mean squared difference of channel-standardised features, per location.

    Each channel of each tensor is normalised to zero mean and unit variance over (N, H, W)
    first (as in PKD), so a narrow student does not have to match the teacher's activation
    scale, only its pattern. Per location the value is ``0.5 * mean_c (s_c - t_c)^2``.

    Args:
        student: (N, C, H, W) features (already mapped to the teacher's width and grid).
        teacher: (N, C, H, W) features.

    Returns:
        (N, H, W) distances, >= 0.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'student features {tuple(student.shape)} and teacher features '
                         f'{tuple(teacher.shape)} differ; align them (connector/resize) first')

    def standardize(x: Tensor) -> Tensor:
        x = x.float()
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        return (x - mean) / (std + eps)

    return 0.5 * (standardize(student) - standardize(teacher)).pow(2).mean(dim=1)
