"""Which channels of a detector are removed together, what makes them, and what reads them.

A :class:`ChannelGroup` is a set of channels ``c = 0..C-1`` that can only be removed as a whole
across several tensors: the slice ``c`` of its ``scales`` (norm scale and shift, or a conv's
filter and bias when there is no norm) decides whether channel ``c`` carries anything; if all of
them are zero, channel ``c`` is exactly zero wherever it flows (every activation used here maps
0 to 0, and the convs that make it have no bias besides the one listed), so the slice ``c`` of
every ``(state-dict key, dim)`` in ``slices`` can be deleted without changing the outputs.
Sparsity training (:class:`kd_det.engine.hooks.SparsityHook`) shrinks ``scales``; pruning
(:mod:`kd_det.pruning.prune`) ranks channels by the L2 norm of their ``scales`` slices and deletes
``slices``.

Covered (``families``):

- ``'neck'``: a :class:`~kd_det.models.necks.SparseBiFPN`. Its additions tie every
  ``out_channels``-wide tensor into one group, which also ties the input channels of the head's
  first convs (found by tracing a forward, so RetinaNet, FCOS, GFL, ATSS... heads work); pruned
  by setting ``neck.out_channels`` and ``bbox_head.in_channels``. Or mmdet's ``FPN`` of a
  one-stage detector: two groups, ``'neck.laterals'`` (the lateral convs' outputs, tied across
  levels by the top-down additions, read by the output convs) and ``'neck.outputs'`` (the
  output and extra convs, read by the head); one ``out_channels`` sets both, so they keep the
  same count.
- ``'head'``: each stacked conv of a dense head's ``cls_convs``/``reg_convs`` (no norm or BN;
  GroupNorm heads such as FCOS/GFL's defaults are skipped: removing channels changes the groups'
  statistics); one config value ``bbox_head.feat_channels`` sets them all, so every head group
  keeps the same number of channels.
- ``'backbone'``: the hidden (expanded) channels of every MobileNetV2 inverted residual block
  (expand conv + BN, depthwise conv + BN, read by the linear conv); pruned widths are written
  as ``SlimMobileNetV2.mid_channels``.

Not covered: block output channels of the backbone (tied across residual additions and to the
neck's laterals), other backbones, PAFPN and other necks, the FPN of two-stage detectors (RoI
heads read it with RoIAlign), two-stage detectors' RoI heads.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

FAMILIES = ('neck', 'head', 'backbone')
# tensor reads that do not use the values (shape queries)
_METADATA_READS = {'size', 'dim', '__get__', 'numel', 'is_contiguous', 'is_floating_point'}


@dataclass
class ChannelGroup:
    """Channels removed together (see the module docstring).

    Attributes:
        name: e.g. ``'neck'``, ``'bbox_head.cls_convs.0'``, ``'backbone.layer3.1'``.
        family: ``'neck'``, ``'head'`` or ``'backbone'``.
        num_channels: C.
        scales: parameters whose dim-0 slice ``c`` decides whether channel ``c`` is alive.
        slices: ``(state-dict key, dim)`` pairs indexed by the kept channels when pruning.
        config_keys: config entries (``'model.neck.out_channels'``) set to the kept count;
            groups sharing a key keep the same count.
    """
    name: str
    family: str
    num_channels: int
    scales: List[nn.Parameter] = field(repr=False)
    slices: List[Tuple[str, int]] = field(repr=False)
    config_keys: Tuple[str, ...]

    def channel_norms(self) -> torch.Tensor:
        """(C, ) L2 norm of each channel's slices of ``scales``."""
        rows = [p.detach().reshape(self.num_channels, -1) for p in self.scales]
        return torch.cat(rows, dim=1).norm(dim=1)


def _norm_slices(prefix: str, norm: nn.Module) -> List[Tuple[str, int]]:
    return [(f'{prefix}.{name}', 0) for name in ('weight', 'bias', 'running_mean', 'running_var')
            if getattr(norm, name, None) is not None]


def _check_zero_preserving(name: str, module: nn.Module) -> None:
    """A zeroed channel must stay zero after the ConvModule's activation."""
    activate = getattr(module, 'activate', None) if getattr(module, 'with_activation',
                                                            False) else None
    if activate is not None and float(activate(torch.zeros(1)).abs()) != 0:
        raise ValueError(f'{name} uses {type(activate).__name__}, which maps 0 to a non-zero '
                         'value; channel pruning needs an activation with act(0) = 0 (ReLU, '
                         'ReLU6, SiLU/Swish, HSwish, none)')


def _conv_module_producer(prefix: str, module: nn.Module) -> Tuple[list, list]:
    """Scales and slices of an mmcv ConvModule's output channels (norm if any, else filters)."""
    _check_zero_preserving(prefix, module)
    conv = module.conv
    slices = [(f'{prefix}.conv.weight', 0)]
    if conv.bias is not None:
        slices.append((f'{prefix}.conv.bias', 0))
    if getattr(module, 'with_norm', False):
        return [module.norm.weight, module.norm.bias], slices + _norm_slices(
            f'{prefix}.{module.norm_name}', module.norm)
    return [p for p in (conv.weight, conv.bias) if p is not None], slices


class _ReadTracer(TorchFunctionMode):
    """Records every torch function that reads a watched tensor, by the tensor's owner."""

    def __init__(self):
        super().__init__()
        self.owner: Dict[int, str] = {}
        self.keep_alive: List[torch.Tensor] = []  # ids stay unique while tensors live
        self.non_conv_reads: Dict[str, set] = {}

    def watch(self, owner: str, tensors: Iterable[torch.Tensor]) -> None:
        for tensor in tensors:
            self.owner[id(tensor)] = owner
            self.keep_alive.append(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', str(func))
        if name not in _METADATA_READS and name != 'conv2d':
            for arg in list(args) + list(kwargs.values()):
                owner = self.owner.get(id(arg)) if isinstance(arg, torch.Tensor) else None
                if owner is not None:
                    self.non_conv_reads.setdefault(owner, set()).add(name)
        return func(*args, **kwargs)


@torch.no_grad()
def trace_conv_readers(detector: nn.Module, head_name: str, producers: Dict[str, nn.Module],
                       image_size: int = 128) -> Dict[str, List[str]]:
    """Names of the convs that read each producer's output in one ``extract_feat`` + head pass.

    Args:
        producers: ``{name: module}``; every tensor the module returns is watched.

    Raises:
        ValueError: a producer's output is read by something other than a conv (then its
            channels cannot be removed by slicing the readers' input channels).
    """
    tracer = _ReadTracer()
    readers: Dict[str, List[str]] = {name: [] for name in producers}
    handles = []

    def on_output(name):
        def hook(module, args, output):
            tracer.watch(name, output if isinstance(output, (tuple, list)) else [output])
        return hook

    def on_conv(conv_name):
        def hook(module, args):
            owner = tracer.owner.get(id(args[0]))
            if owner is not None and conv_name not in readers[owner]:
                readers[owner].append(conv_name)
        return hook

    for name, module in producers.items():
        handles.append(module.register_forward_hook(on_output(name)))
    for conv_name, module in detector.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_pre_hook(on_conv(conv_name)))
    was_training = detector.training
    detector.eval()
    try:
        param = next(detector.parameters())
        dummy = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
        with tracer:
            getattr(detector, head_name)(detector.extract_feat(dummy))
    finally:
        detector.train(was_training)
        for handle in handles:
            handle.remove()
    for owner, funcs in tracer.non_conv_reads.items():
        raise ValueError(f'{owner} output is read by {sorted(funcs)}, not only by convs; its '
                         'channels cannot be pruned by slicing the readers')
    return readers


def _reader_slices(detector: nn.Module, names: Sequence[str]) -> List[Tuple[str, int]]:
    modules = dict(detector.named_modules())
    slices = []
    for name in names:
        if modules[name].groups != 1:
            raise ValueError(f'{name} is a grouped conv reading a prunable tensor; not supported')
        slices.append((f'{name}.weight', 1))
    return slices


NECK_CONFIG_KEYS = ('model.neck.out_channels', 'model.bbox_head.in_channels')


def _head_reader_slices(detector: nn.Module) -> List[Tuple[str, int]]:
    """Input-channel slices of the head convs that read the neck's outputs."""
    head_readers = trace_conv_readers(detector, 'bbox_head', {'neck': detector.neck})['neck']
    if not head_readers:
        raise ValueError('no conv of bbox_head reads the neck outputs; cannot prune the neck')
    return _reader_slices(detector, head_readers)


def fpn_groups(detector: nn.Module) -> List[ChannelGroup]:
    """The lateral and the output channel groups of mmdet's FPN (see the module docstring)."""
    neck = detector.neck
    if getattr(detector, 'roi_head', None) is not None or getattr(detector, 'bbox_head',
                                                                  None) is None:
        return []
    levels = len(neck.lateral_convs)
    extras = range(levels, len(neck.fpn_convs))
    # (group, producers, convs reading the group's channels)
    layout = [('laterals', 'lateral_convs', [f'fpn_convs.{i}' for i in range(levels)]),
              ('outputs', 'fpn_convs', [f'fpn_convs.{i}' for i in extras[1:]])]
    if extras and neck.add_extra_convs in ('on_lateral', 'on_output'):
        layout[neck.add_extra_convs == 'on_output'][2].append(f'fpn_convs.{levels}')
    groups = []
    for name, producers, readers in layout:
        scales, slices = [], []
        for i, module in enumerate(getattr(neck, producers)):
            part_scales, part_slices = _conv_module_producer(f'neck.{producers}.{i}', module)
            scales += part_scales
            slices += part_slices
        slices += [(f'neck.{reader}.conv.weight', 1) for reader in readers]
        if name == 'outputs':
            slices += _head_reader_slices(detector)
        groups.append(ChannelGroup(f'neck.{name}', 'neck', neck.out_channels, scales, slices,
                                   NECK_CONFIG_KEYS))
    return groups


def neck_groups(detector: nn.Module) -> List[ChannelGroup]:
    from mmdet.models.necks import FPN

    from kd_det.models.necks import SparseBiFPN
    neck = getattr(detector, 'neck', None)
    if type(neck) is FPN:  # subclasses (PAFPN, ...) add paths these groups do not cover
        return fpn_groups(detector)
    if not isinstance(neck, SparseBiFPN):
        return []
    if getattr(detector, 'roi_head', None) is not None:
        raise ValueError('the RoI head of a two-stage detector reads the neck with RoIAlign; '
                         'neck pruning supports one-stage detectors only')
    scales, slices = [], []
    for name, module in neck.named_modules():
        if hasattr(module, 'with_activation'):
            _check_zero_preserving(f'neck.{name}', module)
        if isinstance(module, _BatchNorm):
            scales += [module.weight, module.bias]
            slices += _norm_slices(f'neck.{name}', module)
        elif isinstance(module, nn.Conv2d):
            slices.append((f'neck.{name}.weight', 0))
    slices += [(f'neck.{name}.weight', 1) for name in neck.pyramid_input_convs()]
    slices += _head_reader_slices(detector)
    return [ChannelGroup('neck', 'neck', neck.out_channels, scales, slices, NECK_CONFIG_KEYS)]


def head_groups(detector: nn.Module) -> List[ChannelGroup]:
    head = getattr(detector, 'bbox_head', None)
    if head is None or getattr(detector, 'roi_head', None) is not None:
        return []
    feat_channels = getattr(head, 'feat_channels', None)
    producers = {}
    for branch in ('cls_convs', 'reg_convs'):
        for i, module in enumerate(getattr(head, branch, None) or []):
            norm = getattr(module, 'norm', None) if getattr(module, 'with_norm', False) else None
            if not hasattr(module, 'conv') or module.conv.out_channels != feat_channels or (
                    norm is not None and not isinstance(norm, _BatchNorm)):
                return []  # e.g. GroupNorm heads: see the module docstring
            producers[f'bbox_head.{branch}.{i}'] = module
    if not producers:
        return []
    readers = trace_conv_readers(detector, 'bbox_head', producers)
    groups = []
    for name, module in producers.items():
        scales, slices = _conv_module_producer(name, module)
        groups.append(ChannelGroup(name, 'head', feat_channels, scales,
                                   slices + _reader_slices(detector, readers[name]),
                                   ('model.bbox_head.feat_channels', )))
    return groups


def backbone_groups(detector: nn.Module) -> List[ChannelGroup]:
    from mmdet.models.backbones import MobileNetV2
    backbone = getattr(detector, 'backbone', None)
    if not isinstance(backbone, MobileNetV2):
        return []
    groups = []
    for index, (name, block) in enumerate(mobilenet_v2_blocks(backbone)):
        if not block.with_expand_conv or block.with_se or not isinstance(
                getattr(block.expand_conv, 'norm', None), _BatchNorm):
            continue
        prefix = f'backbone.{name}'
        scales, slices = [], []
        for part in ('expand_conv', 'depthwise_conv'):
            module = getattr(block, part)
            part_scales, part_slices = _conv_module_producer(f'{prefix}.{part}', module)
            scales += part_scales
            slices += part_slices
        slices.append((f'{prefix}.linear_conv.conv.weight', 1))
        groups.append(ChannelGroup(prefix, 'backbone', block.depthwise_conv.conv.out_channels,
                                   scales, slices,
                                   (f'model.backbone.mid_channels.{index}', )))
    return groups


def mobilenet_v2_blocks(backbone: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, InvertedResidual)`` of a MobileNetV2 in forward order (``'layer2.0'``, ...)."""
    from mmdet.models.layers import InvertedResidual
    return [(name, module) for name, module in backbone.named_modules()
            if isinstance(module, InvertedResidual)]


def find_channel_groups(detector: nn.Module,
                        families: Sequence[str] = FAMILIES) -> List[ChannelGroup]:
    """Every prunable channel group of ``detector`` (a plain mmdet detector) in ``families``."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f'unknown channel group families {sorted(unknown)}; choose from '
                         f'{FAMILIES}')
    finders = dict(neck=neck_groups, head=head_groups, backbone=backbone_groups)
    groups = []
    for family in FAMILIES:
        if family in families:
            groups += finders[family](detector)
    return groups


def fusion_edges(detector: nn.Module) -> Dict[str, Tuple[nn.Module, int]]:
    """``{'<layer>.<node>.<edge>': (FusionNode, position)}`` of a SparseBiFPN neck (else {})."""
    from kd_det.models.necks import SparseBiFPN
    neck = getattr(detector, 'neck', None)
    if not isinstance(neck, SparseBiFPN):
        return {}
    return {f'{r}.{name}.{edge}': (node, position)
            for r, layer in enumerate(neck.layers) for name, node in layer.nodes.items()
            for position, edge in enumerate(node.inputs)}
