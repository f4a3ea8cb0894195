"""Params, FLOPs and batch-1 CPU latency of a detector's network (backbone + neck + head).

FLOPs come from mmengine's analysis tools; latency is the median over many timed runs after a
warm-up, for PyTorch and (given an exported model) onnxruntime. Post-processing (NMS) is left
out of both, so the two latencies time the same graph.
"""
import statistics
import time
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch import nn


class DenseForward(nn.Module):
    """A detector reduced to ``image -> flat tuple of head outputs`` (mmdet ``mode='tensor'``).

    Args:
        detector: an mmdet detector (or a kd_det/mmrazor algorithm; its student is used).

    ``forward`` takes (N, 3, H, W) normalised images and returns the head outputs flattened
    level by level, e.g. RetinaNet: ``cls_P2, ..., cls_P6, reg_P2, ..., reg_P6``.
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = getattr(detector, 'student', detector)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs = self.detector._forward(images)
        return tuple(flatten_outputs(outputs))


def flatten_outputs(outputs) -> list:
    """Flatten nested lists/tuples of tensors in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for item in outputs:
        flat.extend(flatten_outputs(item))
    return flat


def params_and_flops(detector: nn.Module, input_shape: Sequence[int] = (3, 192, 192)) -> Dict:
    """Parameter count and FLOPs (mmengine's FlopAnalyzer) at batch 1.

    Returns:
        ``dict(params=int, flops=int, <part>_flops=int, ...)`` with one ``<part>_flops`` for
        each of backbone, neck and bbox_head the detector has; FLOPs count one multiply-add as
        one FLOP, as mmengine and mmdet's get_flops report them.
    """
    from mmengine.analysis import FlopAnalyzer
    network = DenseForward(detector).eval()
    dummy = torch.zeros(1, *input_shape)
    with torch.no_grad():
        analyzer = FlopAnalyzer(network, (dummy, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = int(analyzer.total())
        by_module = analyzer.by_module()
    params = sum(p.numel() for p in network.detector.parameters())
    result = dict(params=params, flops=flops)
    for part in ('backbone', 'neck', 'bbox_head'):
        if getattr(detector, part, None) is not None:
            result[f'{part}_flops'] = int(by_module.get(f'detector.{part}', 0))
    return result


def median_latency_ms(run: Callable[[], object], warmup: int = 10, repeats: int = 50) -> float:
    """Median wall time of ``run()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def torch_latency_ms(detector: nn.Module, input_shape: Sequence[int] = (3, 192, 192),
                     warmup: int = 10, repeats: int = 50) -> float:
    """Batch-1 PyTorch CPU latency of :class:`DenseForward` in milliseconds."""
    network = DenseForward(detector).eval()
    dummy = torch.randn(1, *input_shape)
    with torch.no_grad():
        return median_latency_ms(lambda: network(dummy), warmup, repeats)


def onnxruntime_latency_ms(onnx_path: str, input_shape: Sequence[int] = (3, 192, 192),
                           warmup: int = 10, repeats: int = 50, threads: int = 0) -> float:
    """Batch-1 onnxruntime CPU latency of an exported model in milliseconds."""
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    dummy = np.random.randn(1, *input_shape).astype(np.float32)
    return median_latency_ms(lambda: session.run(None, {name: dummy}), warmup, repeats)
