"""ONNX export of a detector's network (backbone + neck + head) and an onnxruntime parity check.

Post-processing (box decoding, NMS) is not in the graph: every backend hands its raw head
outputs to the detector's own head (:mod:`kd_det.deploy.deployed_detector`), so all backends
share mmdet's decoding and NMS. No mmdeploy is needed.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from kd_det.deploy.artifact import DETECTOR_CONFIG, DeployManifest
from kd_det.deploy.dense_forward import DenseForward, output_groups

ONNX_FILE = 'model.onnx'


def export_onnx(detector: nn.Module, out_path: str, input_shape: Sequence[int] = (3, 192, 192),
                opset: int = 17) -> List[str]:
    """Export ``detector`` to ``out_path``; returns the output names.

    The input is ``images`` (N, 3, H, W) with dynamic batch, height and width; outputs are the
    head outputs flattened level by level (``output_0``, ``output_1``, ...), the order of
    :class:`kd_det.deploy.dense_forward.DenseForward`.
    """
    network = DenseForward(detector).eval()
    dummy = torch.randn(1, *input_shape)
    with torch.no_grad():
        num_outputs = len(network(dummy))
    output_names = [f'output_{i}' for i in range(num_outputs)]
    dynamic_axes = {'images': {0: 'batch', 2: 'height', 3: 'width'}}
    dynamic_axes.update({name: {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'}
                         for name in output_names})
    with torch.no_grad():
        torch.onnx.export(network, (dummy, ), out_path, input_names=['images'],
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          opset_version=opset, dynamo=False)
    return output_names


def export_onnx_artifact(detector: nn.Module, detector_cfg, out_dir: str,
                         input_shape: Sequence[int] = (3, 160, 160), opset: int = 17,
                         source_checkpoint: str = '') -> str:
    """Write an fp32 ONNX export directory (``model.onnx``, ``deploy.json``, ``detector.py``);
    returns the ``.onnx`` path. ``detector_cfg`` is the plain mmdet config of ``detector``."""
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = osp.join(out_dir, ONNX_FILE)
    export_onnx(detector, onnx_path, input_shape, opset)
    write_artifact_files(detector, detector_cfg, out_dir, 'onnxruntime', 'fp32', [ONNX_FILE],
                         input_shape, source_checkpoint)
    return onnx_path


def write_artifact_files(detector: nn.Module, detector_cfg, out_dir: str, backend: str,
                         precision: str, files: List[str], input_shape: Sequence[int],
                         source_checkpoint: str = '', notes: Optional[dict] = None) -> None:
    """``deploy.json`` and ``detector.py`` of an export directory."""
    detector_cfg.dump(osp.join(out_dir, DETECTOR_CONFIG))
    DeployManifest(backend=backend, precision=precision, files=list(files),
                   input_shape=list(input_shape),
                   output_groups=output_groups(detector, input_shape),
                   source_checkpoint=source_checkpoint, notes=notes or {}).save(out_dir)


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
    return output_differences(actual, expected)


def output_differences(actual: Sequence[np.ndarray],
                       expected: Sequence[np.ndarray]) -> Dict[str, float]:
    """Largest absolute and relative difference over matching outputs."""
    max_abs = max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))
    max_rel = max(float((np.abs(a - e) / (np.abs(e) + 1e-6)).max())
                  for a, e in zip(actual, expected))
    return dict(max_abs_diff=max_abs, max_rel_diff=max_rel, num_outputs=len(expected))
