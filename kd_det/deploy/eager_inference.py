"""Eager PyTorch inference as a deployment would run it: conv + BN folded, channels-last.

Two standard CPU-inference steps that change no output beyond float rounding:

- :func:`mmcv.cnn.fuse_conv_bn` folds every eval-mode BatchNorm that directly follows a conv
  into that conv's weights and bias (one op instead of two);
- channels-last (NHWC) weights and input, the layout oneDNN's CPU kernels prefer: depthwise
  convs, max-pooling and upsampling stop converting layouts on every call.

Both apply to any mmdet detector, so comparisons between architectures stay fair;
``tools/profile_ops.py --optimized`` measures them next to the plain model.
"""
import copy

import torch
from mmcv.cnn import fuse_conv_bn
from torch import nn


def optimize_for_eager_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with conv + BN folded and channels-last weights.

    Feed it channels-last inputs (:func:`to_channels_last`); NCHW inputs also work, at the
    cost of a layout conversion in the first conv.
    """
    optimized = fuse_conv_bn(copy.deepcopy(model).eval())
    return optimized.to(memory_format=torch.channels_last)


def to_channels_last(images: torch.Tensor) -> torch.Tensor:
    """``images`` (N, C, H, W) in channels-last memory format (same shape and values)."""
    if images.dim() != 4:
        raise ValueError(f'channels-last needs a 4-d (N, C, H, W) batch, got shape '
                         f'{tuple(images.shape)}')
    return images.contiguous(memory_format=torch.channels_last)


__all__ = ['optimize_for_eager_inference', 'to_channels_last']
