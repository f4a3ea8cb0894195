"""Run any deployed model (``.pth`` + config, ONNX, NCNN) on image files: detections as data,
drawings and a JSON file. ``tools/infer.py`` is its command line.

Every backend goes through :class:`~kd_det.deploy.deployed_detector.DeployedDetector`, so the
boxes come from the same mmdet decoding and NMS whatever runs the network.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import mmcv
import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def image_files(paths: Sequence[str]) -> List[str]:
    """Image files named by ``paths`` (files, or directories searched recursively), sorted.

    Raises:
        FileNotFoundError: a path does not exist, or no image was found.
    """
    files = []
    for path in paths:
        if osp.isdir(path):
            files += sorted(osp.join(root, name) for root, _, names in os.walk(path)
                            for name in names if name.lower().endswith(IMAGE_SUFFIXES))
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'image {path!r} does not exist')
    files = list(dict.fromkeys(files))  # a file named twice (also inside a folder) runs once
    if not files:
        raise FileNotFoundError(f'no image ({", ".join(IMAGE_SUFFIXES)}) in {list(paths)}')
    return files


def load_deployed_detector(model_path: str, config: Optional[str] = None, threads: int = 1):
    """A :class:`DeployedDetector` of ``model_path`` with ``cfg`` and ``dataset_meta`` set
    (what mmdet's ``inference_detector`` and visualizer expect)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from kd_det.deploy.evaluate import deployed_detector_config
    cfg = deployed_detector_config(model_path, config, threads=threads)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()
    model.cfg = cfg
    classes = cfg.test_dataloader.dataset.get('metainfo', {}).get('classes')
    if classes is None:
        from mmdet.evaluation import get_classes
        classes = get_classes('coco')
    model.dataset_meta = dict(classes=tuple(classes))
    return model


def detect(model, files: Sequence[str]) -> Iterator[Tuple[str, object]]:
    """``(file, DetDataSample with pred_instances)`` per image, through the config's test
    pipeline (annotation loading dropped) and mmdet's ``inference_detector``."""
    from mmcv.transforms import Compose
    from mmdet.apis import inference_detector
    from mmdet.utils import get_test_pipeline_cfg
    pipeline = [step for step in get_test_pipeline_cfg(model.cfg.copy())
                if step['type'] not in ('LoadAnnotations', 'mmdet.LoadAnnotations')]
    pipeline = Compose(pipeline)
    for file in files:
        yield file, inference_detector(model, file, test_pipeline=pipeline)


def detections_record(file: str, result, class_names: Sequence[str],
                      score_thr: float) -> Dict:
    """JSON-ready detections of one image: boxes ``[x1, y1, x2, y2]`` in pixels of the
    original image, scores, class ids and names, for scores >= ``score_thr``."""
    pred = result.pred_instances
    keep = pred.scores >= score_thr
    boxes, scores, labels = pred.bboxes[keep], pred.scores[keep], pred.labels[keep]
    height, width = result.metainfo['ori_shape'][:2]
    return dict(image=file, width=int(width), height=int(height), detections=[
        dict(bbox=[round(float(v), 2) for v in box], score=round(float(score), 4),
             label=int(label), class_name=class_names[int(label)])
        for box, score, label in zip(boxes, scores, labels)])


def infer_images(model_path: str, images: Sequence[str], out_dir: str,
                 config: Optional[str] = None, score_thr: float = 0.3, threads: int = 1,
                 draw: bool = True, progress: bool = True) -> str:
    """Detect objects in ``images`` with the deployed model; write ``out_dir/detections.json``
    and (``draw``) one picture per image with its boxes. Returns the JSON path."""
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.utils import ProgressBar
    files = image_files(images)
    model = load_deployed_detector(model_path, config, threads)
    class_names = model.dataset_meta['classes']
    os.makedirs(out_dir, exist_ok=True)
    visualizer = None
    if draw:
        visualizer = DetLocalVisualizer(name=f'kd_det_infer_{id(model)}')
        visualizer.dataset_meta = model.dataset_meta
    bar = ProgressBar(len(files)) if progress else None
    records = []
    for file, result in detect(model, files):
        records.append(detections_record(file, result, class_names, score_thr))
        if visualizer is not None:
            image = mmcv.imread(file, channel_order='rgb')
            visualizer.add_datasample(osp.basename(file), image, result, draw_gt=False,
                                      pred_score_thr=score_thr,
                                      out_file=osp.join(out_dir, _picture_name(file, files)))
        if bar is not None:
            bar.update()
    json_path = osp.join(out_dir, 'detections.json')
    with open(json_path, 'w') as f:
        json.dump(dict(model=model_path, backend=model.model.label, score_thr=score_thr,
                       images=records), f, indent=1)
    return json_path


def _picture_name(file: str, files: Sequence[str]) -> str:
    """The drawing's file name: the image's, made unique when two folders share a name."""
    name = osp.splitext(osp.basename(file))[0] + '.jpg'
    if sum(osp.basename(other) == osp.basename(file) for other in files) > 1:
        name = f'{files.index(file):05d}_{name}'
    return name


def boxes_as_arrays(record: Dict) -> Dict[str, np.ndarray]:
    """One JSON record's detections as arrays: ``bboxes`` (K, 4), ``scores`` (K,),
    ``labels`` (K,)."""
    dets = record['detections']
    return dict(bboxes=np.array([d['bbox'] for d in dets], dtype=np.float32).reshape(-1, 4),
                scores=np.array([d['score'] for d in dets], dtype=np.float32),
                labels=np.array([d['label'] for d in dets], dtype=np.int64))
