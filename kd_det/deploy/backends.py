"""Runtimes that run an exported network: PyTorch, onnxruntime and NCNN, behind one call.

Every backend maps one (1, 3, H, W) float32 image (already normalised and padded by the
detector's data preprocessor) to the network's flat head outputs, each (1, C, h, w) float32, in
:class:`kd_det.deploy.dense_forward.DenseForward` order. Backends run batch 1: NCNN has no batch
axis, and batch 1 is what a camera on a small device sees.
"""
from typing import List, Optional

import numpy as np
import torch

from kd_det.deploy.artifact import DeployedModel


class DenseBackend:
    """``backend(image) -> list of outputs``; ``threads`` CPU threads per call."""
    name = ''

    def __init__(self, threads: int = 1):
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f'threads must be a positive integer, got {threads!r}')
        self.threads = threads

    def __call__(self, image: np.ndarray) -> List[np.ndarray]:
        raise NotImplementedError


class TorchBackend(DenseBackend):
    """The PyTorch network itself (eager, ``torch.set_num_threads(threads)`` per call)."""
    name = 'pytorch'

    def __init__(self, detector: torch.nn.Module, threads: int = 1):
        super().__init__(threads)
        from kd_det.deploy.dense_forward import DenseForward
        self.network = DenseForward(detector).eval()

    def __call__(self, image: np.ndarray) -> List[np.ndarray]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.no_grad():
                return [t.numpy() for t in self.network(torch.from_numpy(image))]
        finally:
            torch.set_num_threads(previous)


class OnnxRuntimeBackend(DenseBackend):
    """An ``.onnx`` network (fp32 or QDQ int8) in onnxruntime's CPU provider."""
    name = 'onnxruntime'

    def __init__(self, onnx_path: str, threads: int = 1):
        super().__init__(threads)
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_path, options,
                                            providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, image: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(image)})


class NcnnBackend(DenseBackend):
    """An NCNN param/bin pair (pnnx names the input ``in0`` and outputs ``out0..``) in NCNN's
    Python runtime, fp32 arithmetic (no fp16/bf16 storage) so it matches PyTorch to 1e-3."""
    name = 'ncnn'

    def __init__(self, param_path: str, bin_path: str, num_outputs: int, threads: int = 1):
        super().__init__(threads)
        import ncnn
        self._ncnn = ncnn
        self.net = ncnn.Net()
        options = self.net.opt
        options.num_threads = threads
        for flag in ('use_fp16_packed', 'use_fp16_storage', 'use_fp16_arithmetic',
                     'use_bf16_storage'):
            setattr(options, flag, False)
        if self.net.load_param(param_path) != 0 or self.net.load_model(bin_path) != 0:
            raise RuntimeError(f'NCNN could not load {param_path} / {bin_path}')
        self.num_outputs = num_outputs

    def __call__(self, image: np.ndarray) -> List[np.ndarray]:
        if image.shape[0] != 1:
            raise ValueError(f'NCNN runs one image at a time, got a batch of {image.shape[0]}')
        extractor = self.net.create_extractor()
        extractor.input('in0', self._ncnn.Mat(np.ascontiguousarray(image[0])).clone())
        outputs = []
        for index in range(self.num_outputs):
            status, mat = extractor.extract(f'out{index}')
            if status != 0:
                raise RuntimeError(f'NCNN failed to compute out{index} (status {status})')
            outputs.append(np.array(mat)[None].astype(np.float32))
        return outputs


def open_backend(model: DeployedModel, threads: int = 1,
                 detector: Optional[torch.nn.Module] = None) -> DenseBackend:
    """The runtime for a resolved model path (:func:`kd_det.deploy.artifact.resolve_model`).

    For a ``.pth`` (PyTorch backend), ``detector``, if given, is the already-built detector of
    ``model.config``: the weights are loaded into it instead of building a second one.
    """
    if model.backend == 'onnxruntime':
        return OnnxRuntimeBackend(model.files[0], threads)
    if model.backend == 'ncnn':
        param = next(f for f in model.files if f.endswith('.param'))
        weights = next(f for f in model.files if f.endswith('.bin'))
        return NcnnBackend(param, weights, sum(model.output_groups), threads)
    if model.backend == 'pytorch':
        from kd_det.apis.student import build_student, load_student_weights
        if detector is not None:
            return TorchBackend(load_student_weights(detector, model.files[0]).eval(), threads)
        return TorchBackend(build_student(model.config, model.files[0]), threads)
    raise ValueError(f'unknown backend {model.backend!r}')
