"""An exported network as an mmdet detector: mmdet's data pipeline, decoding, NMS and metrics.

:class:`DeployedDetector` runs the network in a backend (PyTorch, onnxruntime, NCNN) and hands
its raw head outputs to the original detector's head (``predict_by_feat``), so every backend
shares one post-processing path: mmdet's own box decoding, score threshold and NMS, with the
detector config's ``test_cfg``. Inside mmengine's ``Runner.test`` it is evaluated by the
config's ``test_evaluator`` (CocoMetric), which makes parity a mAP (``tools/test_deployed.py``);
with ``mmdet.apis.inference_detector`` it serves ``tools/infer.py``.
"""
from typing import List, Optional

import numpy as np
import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS

from kd_det.deploy.artifact import DeployedModel, resolve_model
from kd_det.deploy.backends import open_backend
from kd_det.deploy.dense_forward import output_groups, regroup_outputs


@MODELS.register_module()
class DeployedDetector(BaseDetector):
    """A deployed network behind mmdet's detector interface (inference only).

    Args:
        detector (dict): the plain mmdet config of the exported detector (its head and
            ``test_cfg`` post-process; its weights are not used unless the backend is PyTorch).
        model_path (str): export directory (or its ``.onnx`` / ``.param`` file) or ``.pth``.
        config_path (str, optional): the detector config file, needed for a ``.pth``.
        threads (int): CPU threads of the backend. Defaults to 1.
        data_preprocessor (dict, optional): defaults to the detector's.

    ``predict`` takes (N, 3, H, W) preprocessed images and runs them one at a time (batch 1,
    as deployed); ``loss`` is not available.
    """

    def __init__(self, detector: dict, model_path: str, config_path: Optional[str] = None,
                 threads: int = 1, data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or detector.get('data_preprocessor'),
                         init_cfg=init_cfg)
        self.detector = MODELS.build(detector)
        if not hasattr(self.detector, 'bbox_head'):
            raise ValueError(f'{type(self.detector).__name__} has no dense bbox_head; deployed '
                             'evaluation supports single-stage dense detectors')
        self.model: DeployedModel = resolve_model(model_path, config_path)
        # a .pth runs in self.detector itself (its weights loaded), not in a second copy
        self.backend = open_backend(self.model, threads, detector=self.detector)
        self.groups = self.model.output_groups or output_groups(self.detector, (3, 64, 64))

    def dense_outputs(self, batch_inputs: torch.Tensor) -> List[list]:
        """Per head output group, per level, the (N, C, h, w) outputs of the backend."""
        per_image = [self.backend(image[None].cpu().numpy().astype(np.float32))
                     for image in batch_inputs]
        flat = [torch.from_numpy(np.concatenate([outputs[i] for outputs in per_image]))
                for i in range(len(per_image[0]))]
        return regroup_outputs(flat, self.groups)

    def predict(self, batch_inputs: torch.Tensor, batch_data_samples, rescale: bool = True):
        """Detections of each image, decoded and NMS-ed by the detector's own head."""
        groups = self.dense_outputs(batch_inputs)
        metas = [sample.metainfo for sample in batch_data_samples]
        results = self.detector.bbox_head.predict_by_feat(*groups, batch_img_metas=metas,
                                                          rescale=rescale)
        return self.detector.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: torch.Tensor, batch_data_samples=None):
        return tuple(self.dense_outputs(batch_inputs))

    def extract_feat(self, batch_inputs: torch.Tensor):
        raise NotImplementedError('a deployed network exposes head outputs, not features')

    def loss(self, batch_inputs, batch_data_samples):
        raise NotImplementedError('a deployed network cannot be trained; train the PyTorch '
                                  'model and export it again')


def deployed_config(cfg, model_path: str, config_path: Optional[str] = None,
                    threads: int = 1):
    """``cfg`` (a plain detector config) with its model replaced by a :class:`DeployedDetector`
    of ``model_path``; data, evaluator and visualizer settings are kept."""
    cfg = cfg.copy()
    detector = cfg.model
    cfg.model = dict(type='DeployedDetector', detector=detector, model_path=model_path,
                     config_path=config_path, threads=threads,
                     data_preprocessor=detector.get('data_preprocessor'))
    cfg.load_from = None
    return cfg
