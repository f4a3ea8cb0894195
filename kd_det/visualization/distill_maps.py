"""Pictures of what a distiller distills: foreground mask, gate and per-location loss."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def collect_distill_maps(algorithm, data_batch: dict) -> List[Dict[str, np.ndarray]]:
    """Run one distillation forward and return, per image, the maps of every feature level.

    Args:
        algorithm: a built ``DetectionDistill`` whose distiller has ``level_maps()``.
        data_batch: a batch from the dataloader (``inputs`` + ``data_samples``).

    Returns:
        Per image, a dict with ``image`` (H, W, 3 uint8 RGB, the network input), ``boxes``
        (K, 4) and, per level ``l``, ``fg_weight/l``, ``gate/l`` (foreground gate on foreground,
        background gate on background) and ``loss/l`` (``1 - cos`` on foreground, KL on
        background), each (h_l, w_l).
    """
    if not hasattr(algorithm.distiller, 'level_maps'):
        raise TypeError(f'{type(algorithm.distiller).__name__} has no level_maps(); the picture '
                        'is available for DecoupledCosineDistiller')
    algorithm.eval()
    with torch.no_grad():
        data = algorithm.data_preprocessor(data_batch, False)
        algorithm.loss(data['inputs'], data['data_samples'])
        levels = algorithm.distiller.level_maps()
    preprocessor = algorithm.data_preprocessor
    images = data['inputs'] * preprocessor.std + preprocessor.mean
    results = []
    for i, sample in enumerate(data['data_samples']):
        image = images[i].clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
        if getattr(preprocessor, '_channel_conversion', False):
            image = image[..., ::-1]  # the network sees RGB; show RGB
        entry = dict(image=np.ascontiguousarray(image),
                     boxes=sample.gt_instances.bboxes.cpu().numpy())
        for index, maps in enumerate(levels):
            fg = maps['fg_weight'][i] > 0
            gate = torch.where(fg, maps['fg_gate'][i], maps.get('bg_gate', maps['fg_gate'])[i])
            loss = maps['fg_distance'][i].float()
            if 'bg_kl' in maps:
                loss = torch.where(fg, loss, maps['bg_kl'][i].float())
            entry[f'fg_weight/{index}'] = maps['fg_weight'][i].cpu().numpy()
            entry[f'gate/{index}'] = gate.float().cpu().numpy()
            entry[f'loss/{index}'] = loss.cpu().numpy()
        results.append(entry)
    return results


def _upsample(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None, None].float()
    return F.interpolate(tensor, size=tuple(shape), mode='nearest')[0, 0].numpy()


def draw_distill_maps(entry: Dict[str, np.ndarray], out_file: str,
                      levels: Optional[Sequence[int]] = None, title: str = '') -> None:
    """Save a PNG: the image with GT boxes, then per level the FG mask, the gate and the loss."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    available = sorted(int(k.split('/')[1]) for k in entry if k.startswith('fg_weight/'))
    levels = available[:3] if levels is None else list(levels)
    image = entry['image']
    fig, axes = plt.subplots(len(levels), 4, figsize=(12, 3.1 * len(levels)), squeeze=False)
    panels = (('foreground weight', 'fg_weight', 'viridis'),
              ('weight left by the teacher-better gate', 'gate', 'RdYlGn'),
              ('per-location loss (1-cos fg, KL bg)', 'loss', 'magma'))
    for row, level in enumerate(levels):
        ax = axes[row, 0]
        ax.imshow(image)
        for x1, y1, x2, y2 in entry['boxes']:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color='white', lw=1))
        ax.set_title(f'input + GT (level {level})', fontsize=9)
        for col, (name, key, cmap) in enumerate(panels, 1):
            values = _upsample(entry[f'{key}/{level}'], image.shape[:2])
            ax = axes[row, col]
            ax.imshow(image, alpha=0.35)
            shown = ax.imshow(values, cmap=cmap, alpha=0.75,
                              vmin=0 if key != 'loss' else None,
                              vmax=1 if key == 'gate' else None)
            fig.colorbar(shown, ax=ax, fraction=0.046)
            ax.set_title(f'{name}, P{level + 3}' if len(available) == 5 else
                         f'{name}, level {level}', fontsize=9)
    save_figure(fig, axes.flat, out_file, title)


def save_figure(fig, axes, out_file: str, title: str = '') -> None:
    """Hide the axes' frames, add the title, write ``out_file`` (PNG) and free the figure."""
    import matplotlib.pyplot as plt
    for ax in axes:
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
