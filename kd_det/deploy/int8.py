"""Post-training static INT8 quantization of an exported ONNX network (onnxruntime, QDQ).

Choices, and why:

* **QDQ format** (QuantizeLinear/DequantizeLinear pairs around each quantized op): the format
  onnxruntime's CPU provider fuses into integer kernels, and the one other runtimes (TensorRT,
  OpenVINO) read too.
* **Per-channel weights** (symmetric int8, one scale per output channel): depthwise and
  pruned convolutions have channels whose weight ranges differ by orders of magnitude; one
  scale per tensor would round the small ones to zero.
* **Activations: uint8, asymmetric, calibrated by percentile (99.999 %)** by default. Detection
  features have long tails (a few very bright cells where objects are); a min-max range spends
  most of the 256 levels on those few values and crushes the rest, while entropy calibration
  (built for classification logits) can clip the bright cells that are the detections. A high
  percentile keeps the tail but ignores single outliers. ``minmax`` and ``entropy`` stay
  selectable.
* **Calibration images** come from the training split through the test pipeline and the data
  preprocessor, exactly what the deployed network receives (no augmentation).
"""
import os
import os.path as osp
import tempfile
from typing import Iterable, Optional, Sequence

import numpy as np

CALIBRATION_METHODS = ('percentile', 'minmax', 'entropy')


class CalibrationReader:
    """onnxruntime's calibration data reader over an iterable of (1, 3, H, W) float32 images."""

    def __init__(self, images: Iterable[np.ndarray], input_name: str = 'images'):
        self._images = iter(images)
        self._input_name = input_name

    def get_next(self) -> Optional[dict]:
        image = next(self._images, None)
        return None if image is None else {self._input_name: image.astype(np.float32)}


def quantize_onnx_int8(fp32_onnx: str, int8_onnx: str, calibration_images: Sequence[np.ndarray],
                       method: str = 'percentile', per_channel: bool = True) -> str:
    """Quantize ``fp32_onnx`` to ``int8_onnx`` (QDQ, int8 weights, uint8 activations).

    Args:
        fp32_onnx: network exported by :func:`kd_det.deploy.export.export_onnx`.
        int8_onnx: output path.
        calibration_images: (1, 3, H, W) float32 images, normalised as the network expects.
        method: ``'percentile'`` (99.999 %), ``'minmax'`` or ``'entropy'``.
        per_channel: one weight scale per output channel.

    Raises:
        ValueError: unknown method or no calibration image.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    if method not in CALIBRATION_METHODS:
        raise ValueError(f'calibration method {method!r} is not one of '
                         f'{", ".join(CALIBRATION_METHODS)}')
    if len(calibration_images) == 0:
        raise ValueError('INT8 calibration needs at least one image')
    calibrate = dict(percentile=CalibrationMethod.Percentile, minmax=CalibrationMethod.MinMax,
                     entropy=CalibrationMethod.Entropy)[method]
    extra = dict(CalibPercentile=99.999) if method == 'percentile' else {}
    os.makedirs(osp.dirname(osp.abspath(int8_onnx)), exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        prepared = osp.join(work, 'prepared.onnx')
        # shape inference + graph optimisation first, as onnxruntime recommends for QDQ
        quant_pre_process(fp32_onnx, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, int8_onnx, CalibrationReader(calibration_images),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=calibrate, extra_options=extra)
    return int8_onnx
