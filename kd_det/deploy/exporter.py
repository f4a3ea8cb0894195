"""From a config + checkpoint to a checked export directory, for every backend.

:func:`export_model` builds the (student) detector, writes the network for the backend
(onnxruntime fp32/int8, NCNN fp32), writes ``deploy.json`` and ``detector.py`` next to it, and
compares the exported network with PyTorch on real validation images
(:func:`parity_on_images`). ``tools/export_onnx.py`` and ``tools/export_ncnn.py`` call it.
"""
import os
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.deploy.artifact import resolve_model
from kd_det.deploy.backends import TorchBackend, open_backend
from kd_det.deploy.export import (ONNX_FILE, export_onnx, output_differences,
                                  write_artifact_files)
from kd_det.deploy.images import prepared_images
from kd_det.deploy.int8 import quantize_onnx_int8
from kd_det.deploy.ncnn_export import NCNN_BIN, NCNN_PARAM, export_ncnn

EXPORT_BACKENDS = ('onnxruntime', 'ncnn')


def parity_on_images(detector, model_dir: str, cfg, num_images: int = 8) -> Dict[str, float]:
    """Largest output difference between PyTorch and the exported network over
    ``num_images`` validation images prepared by the config's pipeline."""
    exported = open_backend(resolve_model(model_dir))
    reference = TorchBackend(detector)
    worst = dict(max_abs_diff=0.0, max_rel_diff=0.0)
    for image, _ in prepared_images(cfg, 'val', num_images):
        diff = output_differences(exported(image), reference(image))
        for key in worst:
            worst[key] = max(worst[key], diff[key])
    worst['num_images'] = num_images
    return worst


def export_model(config: str, checkpoint: Optional[str], out_dir: str,
                 backend: str = 'onnxruntime', int8: bool = False,
                 input_shape: Sequence[int] = (3, 160, 160), calib_images: int = 100,
                 calibration: str = 'percentile', parity_images: int = 8,
                 cfg_options: Optional[dict] = None, opset: int = 17) -> Dict:
    """Export the (student) detector of ``config`` + ``checkpoint`` into ``out_dir``.

    Returns:
        ``dict(out_dir, files, parity)``: ``parity`` is :func:`parity_on_images` (for INT8 the
        difference to the fp32 network it came from: quantization error, judged by mAP with
        ``tools/test_deployed.py``), or None with ``parity_images=0``.

    Raises:
        ValueError: unknown backend, or INT8 asked of NCNN (its quantization tools,
            ncnn2table/ncnn2int8, are not on PyPI).
    """
    if backend not in EXPORT_BACKENDS:
        raise ValueError(f'backend must be one of {EXPORT_BACKENDS}, got {backend!r}')
    if int8 and backend != 'onnxruntime':
        raise ValueError('INT8 is exported for onnxruntime only: NCNN quantizes with its '
                         'ncnn2table/ncnn2int8 tools, which the PyPI ncnn/pnnx wheels do not '
                         'ship. Use --int8 with tools/export_onnx.py')
    detector = build_student(config, checkpoint, cfg_options)
    cfg = student_config(load_config(config, cfg_options=cfg_options))
    os.makedirs(out_dir, exist_ok=True)
    notes = {}
    if backend == 'ncnn':
        export_ncnn(detector, out_dir, input_shape)
        files = [NCNN_PARAM, NCNN_BIN]
    elif int8:
        with tempfile.TemporaryDirectory() as work:
            fp32 = osp.join(work, ONNX_FILE)
            export_onnx(detector, fp32, input_shape, opset)
            calibration_set = [image for image, _ in prepared_images(cfg, 'train', calib_images)]
            quantize_onnx_int8(fp32, osp.join(out_dir, ONNX_FILE), calibration_set, calibration)
        files = [ONNX_FILE]
        notes = dict(calibration=calibration, calibration_images=len(calibration_set),
                     weights='int8 per channel, symmetric', activations='uint8 per tensor')
    else:
        export_onnx(detector, osp.join(out_dir, ONNX_FILE), input_shape, opset)
        files = [ONNX_FILE]
    write_artifact_files(detector, cfg, out_dir, backend, 'int8' if int8 else 'fp32', files,
                         input_shape, checkpoint or '', notes)
    parity = parity_on_images(detector, out_dir, cfg, parity_images) if parity_images else None
    return dict(out_dir=out_dir, files=[osp.join(out_dir, f) for f in files], parity=parity)


def export_report_lines(report: Dict, int8: bool = False) -> list:
    """What the export tools print: the files, the parity check and the next command."""
    lines = [f'exported {", ".join(report["files"])}']
    parity = report['parity']
    if parity is not None:
        what = 'INT8 vs PyTorch fp32 (quantization error)' if int8 else 'vs PyTorch'
        lines.append(f'{what} on {parity["num_images"]} val images: max abs diff '
                     f'{parity["max_abs_diff"]:.2e} over the head outputs')
    lines.append(f'evaluate: python tools/test_deployed.py {report["out_dir"]}')
    return lines
