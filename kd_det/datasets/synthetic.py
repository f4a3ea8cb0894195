"""Embedded synthetic detection dataset (COCO format), generated deterministically from a seed.

The classes are pairs that differ only in one subtle cue (hue, texture, shape detail), objects are
mostly small, images carry clutter (distractor shapes in non-class colours, lines, noise) and
objects may partly occlude each other. That makes capacity matter: a small student confuses the
pairs more often than a wider teacher under the same schedule.

Usage::

    python -m kd_det.datasets.synthetic --out data/synthetic --num-train 800 --num-val 200

writes ``DIR/{train,val}/*.png`` and ``DIR/annotations/instances_{train,val}.json``.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

# (name, shape, BGR colour, texture). Each consecutive pair differs in exactly one cue.
CLASS_SPECS: Tuple[Tuple[str, str, Tuple[int, int, int], str], ...] = (
    ('red_disc', 'disc', (40, 40, 220), 'solid'),
    ('orange_disc', 'disc', (30, 120, 235), 'solid'),
    ('blue_square', 'square', (210, 90, 40), 'solid'),
    ('blue_striped_square', 'square', (210, 90, 40), 'stripes'),
    ('green_triangle', 'triangle', (60, 180, 60), 'solid'),
    ('green_diamond', 'diamond', (60, 180, 60), 'solid'),
    ('purple_ring', 'ring', (180, 50, 160), 'solid'),
    ('purple_dotted_ring', 'ring', (180, 50, 160), 'dots'),
)
SYNTHETIC_CLASSES: Tuple[str, ...] = tuple(spec[0] for spec in CLASS_SPECS)
# Distractors use colours no class uses, so colour alone never names a class but clutter is real.
DISTRACTOR_COLOURS = ((150, 150, 150), (90, 200, 220), (200, 200, 90), (120, 80, 60))


def _draw_shape(img: np.ndarray, shape: str, box: Tuple[int, int, int, int],
                colour: Tuple[int, int, int], texture: str) -> None:
    """Draw one object filling ``box`` = (x1, y1, x2, y2) (inclusive pixel extents)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    rx, ry = (x2 - x1) / 2.0, (y2 - y1) / 2.0
    mask = np.zeros(img.shape[:2], np.uint8)
    if shape == 'disc':
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))),
                    (int(round(rx)), int(round(ry))), 0, 0, 360, 255, -1)
    elif shape == 'ring':
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))),
                    (int(round(rx)), int(round(ry))), 0, 0, 360, 255, -1)
        inner = (max(1, int(round(rx * 0.55))), max(1, int(round(ry * 0.55))))
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), inner, 0, 0, 360, 0, -1)
    elif shape == 'square':
        cv2.rectangle(mask, (x1, y1), (x2, y2), 255, -1)
    elif shape == 'triangle':
        pts = np.array([[cx, y1], [x2, y2], [x1, y2]], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    elif shape == 'diamond':
        pts = np.array([[cx, y1], [x2, cy], [cx, y2], [x1, cy]], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    else:
        raise ValueError(f'unknown shape {shape!r}')

    if texture == 'stripes':
        period = max(3, (x2 - x1) // 4)
        cols = np.arange(img.shape[1])
        mask[:, ((cols - x1) // max(1, period // 2)) % 2 == 1] = 0
    elif texture == 'dots':
        yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
        mask[((yy - y1) % 4 < 2) & ((xx - x1) % 4 < 2)] = 0
    img[mask > 0] = colour


def _random_box(rng: np.random.RandomState, img_size: int, min_size: int,
                max_size: int) -> Tuple[int, int, int, int]:
    # Log-uniform sizes: most objects are small, a few are medium.
    side = int(np.exp(rng.uniform(np.log(min_size), np.log(max_size))))
    aspect = rng.uniform(0.75, 1.33)
    w = max(min_size, min(img_size - 2, int(side * aspect)))
    h = max(min_size, min(img_size - 2, int(side / aspect)))
    x1 = rng.randint(0, img_size - w)
    y1 = rng.randint(0, img_size - h)
    return x1, y1, x1 + w - 1, y1 + h - 1


def _box_iou(a: Tuple[int, ...], b: Tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / float(area(a) + area(b) - inter)


def render_image(rng: np.random.RandomState, img_size: int = 160,
                 max_objects: int = 10, min_size: int = 8,
                 max_size: int = 48) -> Tuple[np.ndarray, List[Dict]]:
    """Render one cluttered image and its objects.

    Returns:
        image: (img_size, img_size, 3) uint8 BGR.
        objects: list of dicts with ``bbox`` = [x, y, w, h] (COCO) and ``category_id`` (0-based).
    """
    base = rng.randint(60, 200, size=3)
    img = np.empty((img_size, img_size, 3), np.float32)
    img[:] = base
    img += rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)

    for _ in range(rng.randint(2, 7)):  # clutter lines
        p1 = tuple(int(v) for v in rng.randint(0, img_size, 2))
        p2 = tuple(int(v) for v in rng.randint(0, img_size, 2))
        colour = tuple(int(c) for c in rng.randint(0, 255, 3))
        cv2.line(img, p1, p2, colour, int(rng.randint(1, 3)))
    for _ in range(rng.randint(1, 5)):  # distractor shapes in non-class colours
        box = _random_box(rng, img_size, min_size, max_size)
        shape = ('disc', 'square', 'triangle', 'diamond')[rng.randint(4)]
        colour = DISTRACTOR_COLOURS[rng.randint(len(DISTRACTOR_COLOURS))]
        _draw_shape(img, shape, box, colour, 'solid')

    objects: List[Dict] = []
    boxes: List[Tuple[int, int, int, int]] = []
    for _ in range(rng.randint(2, max_objects + 1)):
        for _attempt in range(10):
            box = _random_box(rng, img_size, min_size, max_size)
            # Partial occlusion is allowed, hidden objects are not.
            if all(_box_iou(box, other) < 0.3 for other in boxes):
                break
        else:
            continue
        label = rng.randint(len(CLASS_SPECS))
        _, shape, colour, texture = CLASS_SPECS[label]
        jitter = rng.randint(-15, 16, 3)
        colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter))
        _draw_shape(img, shape, box, colour, texture)
        boxes.append(box)
        x1, y1, x2, y2 = box
        objects.append(dict(bbox=[x1, y1, x2 - x1 + 1, y2 - y1 + 1], category_id=int(label)))

    blur = rng.uniform(0, 0.8)
    if blur > 0.3:
        img = cv2.GaussianBlur(img, (3, 3), blur)
    return img, objects


def generate_split(out_dir: str, split: str, num_images: int, seed: int,
                   img_size: int = 160) -> Dict:
    """Write ``num_images`` PNGs under ``out_dir/split`` and return the COCO dict."""
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    split_offset = {'train': 0, 'val': 1_000_003, 'test': 2_000_003}.get(split, 3_000_017)
    for idx in range(num_images):
        rng = np.random.RandomState((seed * 7_919 + split_offset + idx) % (2**32))
        img, objects = render_image(rng, img_size=img_size)
        file_name = f'{split}/{idx:06d}.png'
        cv2.imwrite(osp.join(out_dir, file_name), img)
        image_id = idx + 1
        images.append(dict(id=image_id, file_name=file_name, width=img_size, height=img_size))
        for obj in objects:
            w, h = obj['bbox'][2], obj['bbox'][3]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=obj['category_id'] + 1, bbox=[float(v) for v in obj['bbox']],
                area=float(w * h), iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SYNTHETIC_CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def generate_dataset(out_dir: str, num_train: int = 800, num_val: int = 200,
                     seed: int = 0, img_size: int = 160) -> Dict[str, str]:
    """Generate train and val splits; returns the annotation file paths by split."""
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    paths = {}
    for split, count in (('train', num_train), ('val', num_val)):
        coco = generate_split(out_dir, split, count, seed, img_size)
        path = osp.join(ann_dir, f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(coco, f)
        paths[split] = path
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/synthetic', help='output directory')
    parser.add_argument('--num-train', type=int, default=800)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--img-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.num_train < 1 or args.num_val < 1:
        parser.error('--num-train and --num-val must be at least 1')
    paths = generate_dataset(args.out, args.num_train, args.num_val, args.seed, args.img_size)
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
