"""Deployment: exports (ONNX :mod:`.export`, NCNN :mod:`.ncnn_export`, INT8 :mod:`.int8`), the
export directory (:mod:`.artifact`), runtimes (:mod:`.backends`), the deployed network as an
mmdet detector sharing mmdet's post-processing (:mod:`.deployed_detector`), params and FLOPs
(:mod:`.complexity`) and side-by-side latency (:mod:`.latency`).

Importing it registers :class:`DeployedDetector`; onnxruntime, ncnn and pnnx are imported only
when a backend or export needs them.
"""
from kd_det.deploy.deployed_detector import DeployedDetector  # noqa: F401
