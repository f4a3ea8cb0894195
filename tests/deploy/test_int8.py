"""INT8 post-training quantization (onnxruntime, QDQ) on a crafted network."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from kd_det.deploy.backends import OnnxRuntimeBackend
from kd_det.deploy.int8 import quantize_onnx_int8


def _crafted_onnx(path: str) -> nn.Module:
    """Conv 3->8 (3x3) + ReLU + conv 8->4 (1x1), weights with channels of very different
    magnitude (per-channel scales matter), exported like kd_det exports detectors."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    with torch.no_grad():
        network[0].weight.mul_(torch.logspace(-2, 0, 8)[:, None, None, None])
    torch.onnx.export(network, (torch.zeros(1, 3, 16, 16), ), path, input_names=['images'],
                      output_names=['output_0'], opset_version=17, dynamo=False)
    return network


def _images(count: int, seed: int):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, (1, 3, 16, 16)).astype(np.float32) for _ in range(count)]


@pytest.mark.parametrize('method', ['percentile', 'minmax', 'entropy'])
def test_int8_output_within_two_percent_of_the_output_range(tmp_path, method):
    network = _crafted_onnx(str(tmp_path / 'fp32.onnx'))
    int8_path = quantize_onnx_int8(str(tmp_path / 'fp32.onnx'), str(tmp_path / 'int8.onnx'),
                                   _images(32, seed=0), method=method)
    image = _images(1, seed=1)[0]  # not a calibration image
    with torch.no_grad():
        expected = network(torch.from_numpy(image)).numpy()
    actual = OnnxRuntimeBackend(int8_path)(image)[0]
    output_range = expected.max() - expected.min()
    # stated tolerance: 2 % of the output range (8-bit steps are 0.4 % of a range; the rest is
    # the rounding of the weights and of the hidden activations)
    assert np.abs(actual - expected).max() <= 0.02 * output_range
    assert np.abs(actual - expected).max() > 0  # it is really quantized


def test_quantized_graph_has_per_channel_int8_weights(tmp_path):
    _crafted_onnx(str(tmp_path / 'fp32.onnx'))
    quantize_onnx_int8(str(tmp_path / 'fp32.onnx'), str(tmp_path / 'int8.onnx'),
                       _images(8, seed=0))
    graph = onnx.load(str(tmp_path / 'int8.onnx')).graph
    ops = [node.op_type for node in graph.node]
    assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
    weights = {init.name: init for init in graph.initializer}
    int8_weights = [w for w in weights.values()
                    if w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4]
    assert len(int8_weights) == 2
    # one scale per output channel of the first conv
    scale_sizes = sorted(int(np.prod(w.dims)) for w in weights.values()
                         if w.name.endswith('_scale') and len(w.dims) == 1)
    assert 8 in scale_sizes and 4 in scale_sizes


def test_bad_calibration_input_is_refused(tmp_path):
    _crafted_onnx(str(tmp_path / 'fp32.onnx'))
    with pytest.raises(ValueError, match='is not one of percentile, minmax, entropy'):
        quantize_onnx_int8(str(tmp_path / 'fp32.onnx'), str(tmp_path / 'q.onnx'),
                           _images(2, 0), method='kl')
    with pytest.raises(ValueError, match='at least one image'):
        quantize_onnx_int8(str(tmp_path / 'fp32.onnx'), str(tmp_path / 'q.onnx'), [])
