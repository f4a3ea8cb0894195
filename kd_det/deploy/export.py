"""ONNX export of a detector's network (backbone + neck + head) and an onnxruntime parity check.

Post-processing (box decoding, NMS) stays in Python, as in mmdet's ``mode='tensor'``; no
mmdeploy is needed.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import nn

from kd_det.deploy.dense_forward import DenseForward


def export_onnx(detector: nn.Module, out_path: str, input_shape: Sequence[int] = (3, 192, 192),
                opset: int = 17) -> List[str]:
    """Export ``detector`` to ``out_path``; returns the output names.

    The input is ``images`` (N, 3, H, W) with a dynamic batch axis; outputs are the head outputs
    flattened level by level (``output_0``, ``output_1``, ...), the order of
    :class:`kd_det.deploy.dense_forward.DenseForward`.
    """
    network = DenseForward(detector).eval()
    dummy = torch.randn(1, *input_shape)
    with torch.no_grad():
        num_outputs = len(network(dummy))
    output_names = [f'output_{i}' for i in range(num_outputs)]
    dynamic_axes = {'images': {0: 'batch'}}
    dynamic_axes.update({name: {0: 'batch'} for name in output_names})
    with torch.no_grad():
        torch.onnx.export(network, (dummy, ), out_path, input_names=['images'],
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          opset_version=opset, dynamo=False)
    return output_names


def onnx_parity(detector: nn.Module, onnx_path: str, input_shape: Sequence[int] = (3, 192, 192),
                batch_size: int = 2, seed: int = 0) -> Dict[str, float]:
    """Run PyTorch and onnxruntime on the same random batch and compare every output.

    Returns:
        ``dict(max_abs_diff=..., max_rel_diff=..., num_outputs=...)`` over all outputs.
    """
    import onnxruntime as ort
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, *input_shape, generator=generator)
    network = DenseForward(detector).eval()
    with torch.no_grad():
        expected = [t.numpy() for t in network(images)]
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    actual = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    if len(actual) != len(expected):
        raise RuntimeError(f'onnxruntime returned {len(actual)} outputs, PyTorch '
                           f'{len(expected)}')
    max_abs = max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))
    max_rel = max(float((np.abs(a - e) / (np.abs(e) + 1e-6)).max())
                  for a, e in zip(actual, expected))
    return dict(max_abs_diff=max_abs, max_rel_diff=max_rel, num_outputs=len(expected))
