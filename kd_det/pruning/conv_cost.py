"""What a channel of each prunable group costs in multiply-accumulates, as channels go.

A conv's MACs are ``unit * out_channels * in_channels / groups`` where ``unit`` is the sum over
its calls of ``H_out * W_out * k_h * k_w`` (one forward at the training input size, so a head
shared across pyramid levels counts every level). A channel group slices some convs' output
dim (dim 0 of the weight) and others' input dim (dim 1); removing one of its channels saves
that conv's MACs for one output (or input) channel, at the conv's *current* other width.
:class:`ConvCost` keeps the alive count of every group and answers both questions.

Only conv MACs are modelled: the element-wise work (BN, additions, upsampling) of a removed
channel is not subtracted, so a FLOPs ratio estimated from it is slightly above the exact count
of the cut network (by about a point on the embedded student at half its FLOPs), never below.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from kd_det.pruning.channel_groups import ChannelGroup


def conv_units(detector: nn.Module, image: torch.Tensor, head_name: str = 'bbox_head'
               ) -> Dict[str, float]:
    """``{conv weight key: sum over calls of H_out * W_out * k_h * k_w}`` of one
    ``extract_feat`` + head pass on ``image`` ((1, 3, H, W)), eval mode, no gradients."""
    units: Dict[str, float] = {}
    handles = []

    def on_conv(key):
        def hook(module, args, output):
            k_h, k_w = module.kernel_size
            units[key] = units.get(key, 0.0) + output.shape[-2] * output.shape[-1] * k_h * k_w
        return hook

    for name, module in detector.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv(f'{name}.weight')))
    was_training = detector.training
    detector.eval()
    try:
        with torch.no_grad():
            getattr(detector, head_name)(detector.extract_feat(image))
    finally:
        detector.train(was_training)
        for handle in handles:
            handle.remove()
    return units


class ConvCost:
    """MACs of the convs the groups touch, as a function of each group's alive channels.

    Args:
        detector: the detector the groups belong to.
        groups: its channel groups (:func:`kd_det.pruning.channel_groups.find_channel_groups`).
        image: (1, 3, H, W) input at the training size.
    """

    def __init__(self, detector: nn.Module, groups: Sequence[ChannelGroup],
                 image: torch.Tensor):
        units = conv_units(detector, image)
        weights = dict(detector.named_parameters())
        self.groups = {g.name: g for g in groups}
        self.alive = {g.name: g.num_channels for g in groups}
        # conv key -> dict(unit, shape, groups, out=group name or None, in_=group name or None)
        self.convs: Dict[str, dict] = {}
        for group in groups:
            for key, dim in group.slices:
                if key not in units:
                    continue  # a bias or a norm tensor: no MACs of its own
                conv = self.convs.setdefault(key, dict(unit=units[key],
                                                       shape=tuple(weights[key].shape),
                                                       out=None, in_=None))
                conv['out' if dim == 0 else 'in_'] = group.name

    def _width(self, conv: dict, side: str) -> float:
        """Current out (side='out') or per-group input (side='in_') width of a conv."""
        full = conv['shape'][0 if side == 'out' else 1]
        owner = conv[side]
        if owner is None:
            return float(full)
        return full * self.alive[owner] / self.groups[owner].num_channels

    def conv_macs(self) -> float:
        """Current MACs of every conv a group touches."""
        return sum(c['unit'] * self._width(c, 'out') * self._width(c, 'in_')
                   for c in self.convs.values())

    def channel_cost(self, name: str) -> float:
        """MACs saved by removing one channel of group ``name`` at the current widths."""
        cost = 0.0
        for conv in self.convs.values():
            width_out, width_in = self._width(conv, 'out'), self._width(conv, 'in_')
            if conv['out'] == name and conv['in_'] == name:  # e.g. an FPN's second extra conv
                cost += conv['unit'] * (width_out + width_in - 1)
            elif conv['out'] == name:  # (a depthwise conv's per-group input width is 1)
                cost += conv['unit'] * width_in
            elif conv['in_'] == name:
                cost += conv['unit'] * width_out
        return cost

    def remove(self, name: str, count: int) -> None:
        self.alive[name] -= count

    def state(self) -> List[Tuple[str, int]]:
        return sorted(self.alive.items())


__all__ = ['conv_units', 'ConvCost']
