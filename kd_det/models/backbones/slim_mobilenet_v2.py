"""SlimMobileNetV2: mmdet's MobileNetV2 with per-block hidden widths, i.e. a pruned MobileNetV2."""
from typing import Sequence

from mmdet.models.backbones import MobileNetV2
from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from torch import nn


@MODELS.register_module()
class SlimMobileNetV2(MobileNetV2):
    """MobileNetV2 whose inverted residual blocks have the given hidden widths.

    What :mod:`kd_det.pruning.prune` writes for a backbone whose hidden channels were pruned
    (`MobileNetV2 <https://arxiv.org/abs/1801.04381>`_ otherwise unchanged). State-dict keys are
    mmdet ``MobileNetV2``'s; stages after the last of ``out_indices`` (which mmdet's MobileNetV2
    computes and discards, e.g. the 1280-channel ``conv2`` when ``out_indices=(2, 4, 6)``) are
    not built.

    Args:
        mid_channels (Sequence[int]): hidden width of each of the 17 blocks, in forward order
            (``layer1.0``, ``layer2.0``, ``layer2.1``, ...). Blocks without an expand conv
            (``layer1.0``) must keep their input width.
        **kwargs: as :class:`mmdet.models.backbones.MobileNetV2`.

    ``forward`` takes (N, 3, H, W) and returns one (N, C_i, H_i, W_i) tensor per out index.
    """

    def __init__(self, mid_channels: Sequence[int], **kwargs):
        num_blocks = sum(setting[2] for setting in self.arch_settings)
        if len(mid_channels) != num_blocks:
            raise ValueError(f'mid_channels needs one width per block ({num_blocks}), got '
                             f'{len(mid_channels)}')
        self._mid_channels = list(mid_channels)
        self._next_block = 0
        super().__init__(**kwargs)
        self.mid_channels = self._mid_channels
        last = max(self.out_indices)
        for name in self.layers[last + 1:]:
            delattr(self, name)
        self.layers = self.layers[:last + 1]

    def make_layer(self, out_channels, num_blocks, stride, expand_ratio):
        layers = []
        for i in range(num_blocks):
            layers.append(
                InvertedResidual(
                    self.in_channels,
                    out_channels,
                    mid_channels=self._mid_channels[self._next_block],
                    stride=stride if i == 0 else 1,
                    with_expand_conv=expand_ratio != 1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                    with_cp=self.with_cp))
            self._next_block += 1
            self.in_channels = out_channels
        return nn.Sequential(*layers)
