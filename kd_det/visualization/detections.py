"""Side-by-side detections of several models on the same images, next to the ground truth."""
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np


def boxes_above(pred_instances, score_thr: float) -> Dict[str, np.ndarray]:
    """The predicted boxes worth drawing.

    Args:
        pred_instances: mmdet ``InstanceData`` with ``bboxes`` (K, 4) xyxy, ``scores`` (K, ) and
            ``labels`` (K, ).
        score_thr: keep boxes scoring at least this.

    Returns:
        ``bboxes`` (M, 4), ``labels`` (M, ), ``scores`` (M, ) as numpy arrays, M <= K.
    """
    keep = pred_instances.scores >= score_thr
    return dict(bboxes=pred_instances.bboxes[keep].cpu().numpy(),
                labels=pred_instances.labels[keep].cpu().numpy(),
                scores=pred_instances.scores[keep].cpu().numpy())


def draw_detection_grid(images: Sequence[np.ndarray], ground_truth: Sequence[Dict],
                        predictions: Dict[str, Sequence[Dict]], class_names: Sequence[str],
                        out_file: str, title: str = '') -> List[List[int]]:
    """One row per image: the ground truth, then each model's boxes; write a PNG.

    Args:
        images: (H, W, 3) uint8 RGB images.
        ground_truth: per image, ``bboxes`` (K, 4) xyxy and ``labels`` (K, ).
        predictions: model name -> per image, what :func:`boxes_above` returns.
        class_names: label -> name; each class gets its own colour.
        out_file: the PNG to write.

    Returns:
        The number of boxes drawn per row and panel (ground truth first).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from kd_det.visualization.distill_maps import save_figure
    if any(len(per_image) != len(images) for per_image in predictions.values()):
        raise ValueError('every model needs one prediction per image')
    panels = [('ground truth', ground_truth)] + list(predictions.items())
    colours = plt.get_cmap('tab10')
    fig, axes = plt.subplots(len(images), len(panels), squeeze=False,
                             figsize=(2.6 * len(panels), 2.6 * len(images)))
    counts = []
    for row, image in enumerate(images):
        counts.append([])
        for column, (name, per_image) in enumerate(panels):
            ax, boxes = axes[row, column], per_image[row]
            ax.imshow(image)
            scores = boxes.get('scores', [None] * len(boxes['labels']))
            for (x1, y1, x2, y2), label, score in zip(boxes['bboxes'], boxes['labels'], scores):
                colour = colours(int(label) % 10)
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2,
                                       edgecolor=colour))
                text = class_names[int(label)] + ('' if score is None else f' {score:.2f}')
                ax.text(x1, y1 - 1, text, fontsize=5, color='white', va='bottom',
                        bbox=dict(facecolor=colour, alpha=0.7, pad=0.5, lw=0))
            counts[-1].append(len(boxes['labels']))
            if row == 0:
                ax.set_title(name, fontsize=8)
    save_figure(fig, axes.flat, out_file, title)
    return counts


def predict_boxes(config: str, checkpoint: str, image_files: Sequence[str],
                  score_thr: float = 0.3) -> List[Dict[str, np.ndarray]]:
    """Run a trained detector (mmdet's ``inference_detector``) and keep its confident boxes.

    Returns:
        Per image, what :func:`boxes_above` returns.
    """
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(config, checkpoint, device='cpu')
    return [boxes_above(result.pred_instances, score_thr)
            for result in inference_detector(model, list(image_files))]


def coco_ground_truth(ann_file: str, image_dir: str, num_images: int):
    """The first ``num_images`` images of a COCO annotation file, by image id.

    Returns:
        image paths, (H, W, 3) uint8 RGB images, per image ``bboxes`` (K, 4) xyxy and
        ``labels`` (K, ) (the category's position in the file's category list), and the
        class names in that order.
    """
    import mmcv
    from pycocotools.coco import COCO
    coco = COCO(ann_file)
    category_ids = sorted(coco.getCatIds())
    names = [coco.loadCats(cid)[0]['name'] for cid in category_ids]
    files, images, truth = [], [], []
    for image_id in sorted(coco.getImgIds())[:num_images]:
        info = coco.loadImgs(image_id)[0]
        files.append(osp.join(image_dir, info['file_name']))
        images.append(mmcv.imread(files[-1], channel_order='rgb'))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                         dtype=np.float32).reshape(-1, 4)
        labels = np.array([category_ids.index(a['category_id']) for a in anns], dtype=np.int64)
        truth.append(dict(bboxes=boxes, labels=labels))
    return files, images, truth, names
