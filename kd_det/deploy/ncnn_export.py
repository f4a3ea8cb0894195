"""NCNN export through PyPI's ``pnnx`` (TorchScript -> pnnx -> ncnn param/bin).

pnnx reads the traced PyTorch graph directly, so no ONNX round trip (and none of the ONNX ->
NCNN converter's unsupported-op gaps) stands between the model and NCNN. The network is traced
at two input sizes so size-dependent ops (FPN's upsampling to the finer level's size) stay
dynamic in NCNN. Weights are stored in fp32 (``fp16=False``): parity with PyTorch is checked at
1e-3, and NCNN still computes in its fastest kernels at run time.
"""
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Sequence

import torch
from torch import nn

from kd_det.deploy.dense_forward import DenseForward

NCNN_PARAM = 'model.ncnn.param'
NCNN_BIN = 'model.ncnn.bin'


class NcnnExportError(RuntimeError):
    """pnnx could not convert the network; the message carries pnnx's reason."""


def export_ncnn(detector: nn.Module, out_dir: str,
                input_shape: Sequence[int] = (3, 160, 160)) -> List[str]:
    """Write ``model.ncnn.param`` and ``model.ncnn.bin`` into ``out_dir``; returns their paths.

    Raises:
        ImportError: pnnx is not installed (``pip install pnnx``).
        NcnnExportError: pnnx failed or wrote no NCNN files (an op it cannot convert).
    """
    try:
        import pnnx
    except ImportError as error:
        raise ImportError('NCNN export needs pnnx: pip install pnnx') from error
    network = DenseForward(detector).eval()
    channels, height, width = input_shape
    images = torch.randn(1, channels, height, width)
    # a second size (one stride-32 step larger) marks the spatial sizes as dynamic
    images2 = torch.randn(1, channels, height + 32, width + 32)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        param, weights = osp.join(work, 'model.ncnn.param'), osp.join(work, 'model.ncnn.bin')
        try:
            with torch.no_grad():
                pnnx.export(network, osp.join(work, 'model.pt'), (images, ),
                            inputs2=(images2, ), ncnnparam=param, ncnnbin=weights,
                            pnnxparam=osp.join(work, 'model.pnnx.param'),
                            pnnxbin=osp.join(work, 'model.pnnx.bin'),
                            pnnxpy=osp.join(work, 'model_pnnx.py'),
                            pnnxonnx=osp.join(work, 'model.pnnx.onnx'),
                            ncnnpy=osp.join(work, 'model_ncnn.py'), fp16=False)
        except Exception as error:  # pnnx raises bare Exceptions
            raise NcnnExportError(f'pnnx could not convert the network: {error}') from error
        if not (osp.isfile(param) and osp.isfile(weights)):
            raise NcnnExportError('pnnx wrote no NCNN files; its log above names the op it '
                                  'could not convert')
        outputs = [osp.join(out_dir, NCNN_PARAM), osp.join(out_dir, NCNN_BIN)]
        shutil.move(param, outputs[0])
        shutil.move(weights, outputs[1])
    return outputs
