"""Params and FLOPs of a detector's network (backbone + neck + head), from mmengine's analysis
tools. Post-processing (NMS) is left out, as in the exported model and the latency of
:mod:`kd_det.deploy.latency`.
"""
from typing import Dict, Sequence

import torch
from torch import nn

from kd_det.deploy.dense_forward import DenseForward


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
