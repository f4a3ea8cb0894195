"""Pictures of confidence-guided distillation: teacher confidence, selected regions, weights."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .distill_maps import save_figure


def collect_confidence_maps(algorithm, inputs: torch.Tensor,
                            data_samples: Optional[Sequence] = None) -> List[Dict[str, object]]:
    """Run teacher and student once (no losses, no GT needed) and read the distiller's maps.

    Args:
        algorithm: a built ``DetectionDistill`` (or subclass) whose distiller has
            ``confidence_maps()`` (``ConfidenceSoftLabelDistiller``).
        inputs: (N, 3, H, W) preprocessed images (the output of the algorithm's data
            preprocessor).
        data_samples: their ``DetDataSample`` s, or None.

    Returns:
        Per image a dict with ``image`` (H, W, 3 uint8 RGB, the network input, padding
        included), ``boxes`` ((K, 4) GT boxes, possibly empty) and per level ``l``
        (h_l, w_l) float arrays ``confidence/l``, ``region/l`` (0/1) and ``weight/l``.
    """
    distiller = algorithm.distiller
    if not hasattr(distiller, 'confidence_maps'):
        raise TypeError(f'{type(distiller).__name__} has no confidence_maps(); the picture is '
                        'available for ConfidenceSoftLabelDistiller')
    was_training = algorithm.training
    algorithm.eval()
    try:
        with torch.no_grad():
            with distiller.teacher_recorders:
                algorithm.teacher_forward(inputs)
            with distiller.student_recorders:
                student = algorithm.student
                student.bbox_head(student.extract_feat(inputs))
            levels = distiller.confidence_maps()
    finally:
        algorithm.train(was_training)
    preprocessor = algorithm.data_preprocessor
    images = inputs * preprocessor.std + preprocessor.mean
    results = []
    for i in range(inputs.shape[0]):
        image = images[i].clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
        if getattr(preprocessor, '_channel_conversion', False):
            image = image[..., ::-1]  # the network sees RGB; show RGB
        sample = data_samples[i] if data_samples is not None else None
        gt = getattr(sample, 'gt_instances', None) if sample is not None else None
        boxes = np.zeros((0, 4), np.float32) if gt is None or 'bboxes' not in gt else \
            _box_array(gt.bboxes)
        entry = dict(image=np.ascontiguousarray(image), boxes=boxes)
        for index, maps in enumerate(levels):
            entry[f'confidence/{index}'] = maps['confidence'][i].float().cpu().numpy()
            entry[f'region/{index}'] = maps['region'][i].float().cpu().numpy()
            entry[f'weight/{index}'] = maps['weight'][i].float().cpu().numpy()
        results.append(entry)
    return results


def _box_array(boxes) -> np.ndarray:
    tensor = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    return tensor.detach().float().cpu().numpy().reshape(-1, 4)


def _upsample(array: np.ndarray, shape: Sequence[int], mode: str = 'nearest') -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None, None].float()
    return F.interpolate(tensor, size=tuple(shape), mode=mode)[0, 0].numpy()


def combine_levels(entry: Dict[str, object], key: str, shape: Sequence[int]) -> np.ndarray:
    """Per-pixel maximum over levels of ``key/l`` maps upsampled to ``shape`` (H, W)."""
    levels = sorted(int(k.split('/')[1]) for k in entry if k.startswith(f'{key}/'))
    return np.max(np.stack([_upsample(entry[f'{key}/{lvl}'], shape) for lvl in levels]), axis=0)


def draw_confidence_maps(entry: Dict[str, object], out_file: str, title: str = '') -> None:
    """Save a PNG: the image (GT boxes in white), the teacher's confidence (max over levels),
    the selected regions coloured by FPN level, and the hard-sample weights on them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle
    image = entry['image']
    shape = image.shape[:2]
    levels = sorted(int(k.split('/')[1]) for k in entry if k.startswith('region/'))
    # the finest level that selects a pixel names it (small objects live on fine levels)
    level_map = np.full(shape, -1.0)
    for level in reversed(levels):
        selected = _upsample(entry[f'region/{level}'], shape) > 0.5
        level_map[selected] = level
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.0))
    axes[0].imshow(image)
    for x1, y1, x2, y2 in entry['boxes']:
        axes[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color='white', lw=1))
    axes[0].set_title('input (+ GT if any)', fontsize=9)

    axes[1].imshow(image, alpha=0.35)
    shown = axes[1].imshow(combine_levels(entry, 'confidence', shape), cmap='viridis', vmin=0,
                           vmax=1, alpha=0.8)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title('teacher confidence (max over levels)', fontsize=9)

    colours = plt.get_cmap('tab10').colors[:max(len(levels), 1)]
    axes[2].imshow(image)
    masked = np.ma.masked_less(level_map, 0)
    axes[2].imshow(masked, cmap=ListedColormap(colours), vmin=-0.5,
                   vmax=len(colours) - 0.5, alpha=0.6, interpolation='nearest')
    axes[2].legend(handles=[Patch(color=colours[i], label=f'P{lvl + 3}' if len(levels) == 5
                                  else f'level {lvl}') for i, lvl in enumerate(levels)],
                   fontsize=7, loc='lower right')
    axes[2].set_title('selected regions (by FPN level)', fontsize=9)

    axes[3].imshow(image, alpha=0.35)
    weights = np.ma.masked_equal(combine_levels(entry, 'weight', shape), 0)
    shown = axes[3].imshow(weights, cmap='magma', alpha=0.85)
    fig.colorbar(shown, ax=axes[3], fraction=0.046)
    axes[3].set_title('hard-sample weight on regions', fontsize=9)
    save_figure(fig, axes, out_file, title)
