"""Look at what sparsity training did: per-group sparsity and histograms of channel scales."""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch

from kd_det.apis.student import build_student
from kd_det.pruning.channel_groups import FAMILIES, find_channel_groups
from kd_det.pruning.importance import channel_rms, fusion_parameters


def scale_statistics(detector: torch.nn.Module,
                     families: Sequence[str] = FAMILIES) -> Dict[str, torch.Tensor]:
    """Channel RMS scales per family (``'neck'``, ``'head'``, ``'backbone'``) and the
    normalised fusion weights (``'fusion'``) of a detector, as 1-D tensors."""
    values = {}
    for group in find_channel_groups(detector, families):
        values.setdefault(group.family, []).append(channel_rms(group))
    stats = {family: torch.cat(parts) for family, parts in values.items()}
    fusion = []
    for weight in fusion_parameters(detector):
        weight = torch.relu(weight.detach())
        fusion.append(weight / (weight.sum() + 1e-4))
    if fusion:
        stats['fusion'] = torch.cat(fusion)
    return stats


def plot_scale_histograms(config: str, checkpoints: Sequence[str], out_path: str,
                          families: Sequence[str] = FAMILIES, threshold: float = 1e-3,
                          labels: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    """Write a PNG with one histogram panel per family, one curve per checkpoint.

    Returns:
        ``{label: {family: fraction of channels (edges) at or below threshold}}``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = list(labels or [osp.splitext(osp.basename(c))[0] for c in checkpoints])
    stats = {label: scale_statistics(build_student(config, ckpt), families)
             for label, ckpt in zip(labels, checkpoints)}
    panels = [f for f in (*FAMILIES, 'fusion') if any(f in s for s in stats.values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    summary = {label: {} for label in labels}
    for ax, family in zip(axes[0], panels):
        upper = max(float(s[family].max()) for s in stats.values() if family in s) or 1.0
        bins = torch.linspace(0, upper, 41).tolist()
        for label, values in stats.items():
            if family not in values:
                continue
            sparse = float((values[family] <= threshold).float().mean())
            summary[label][family] = sparse
            ax.hist(values[family].numpy(), bins=bins, histtype='step', linewidth=1.5,
                    label=f'{label} ({100 * sparse:.0f}% <= {threshold:g})')
        ax.set_yscale('log')
        ax.set_title(f'{family}: ' + ('normalised fusion weight' if family == 'fusion'
                                      else 'channel RMS scale'))
        ax.set_xlabel('value')
        ax.set_ylabel('count')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return summary
