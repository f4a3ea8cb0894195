"""Prune a (sparsity-trained) detector into a physically smaller one: a plain config + checkpoint.

What is removed (see :mod:`kd_det.pruning.channel_groups` for the exact coverage):

- **neck** (SparseBiFPN): the channels of its one coupled group, i.e. ``out_channels`` of the
  whole neck *jointly with* the input channels of the head's first convs (the head is shared
  across levels and every BiFPN node adds its inputs, so no channel can go in one place only);
  fusion edges whose weight is zero (or below ``edge_threshold`` of the node's normalised
  weights), and top-down nodes no alive edge reads;
- **head**: the stacked convs' channels of a head without norm or with BN (RetinaNet's); all
  stacked convs keep the same count, the config's ``feat_channels``;
- **backbone**: MobileNetV2 hidden channels per block (written as ``SlimMobileNetV2``).

A channel is ranked by the root-mean-square of its scales (BN scale and shift, or filter and
bias); ``threshold`` removes channels at or below it (``0``: only exact zeros, which leaves the
outputs unchanged), ``ratio`` removes that fraction of each family's channels, lowest first.
Kept counts are rounded up to a multiple of ``divisor`` (8: onnxruntime's CPU convs are much
faster at such widths). Channels that carry only a constant (zero scale, non-zero shift) are
not compensated: with zero-padded 3x3 convs downstream a constant is not foldable exactly, so
only all-zero channels prune exactly; the group lasso drives scale and shift to zero together.
The result is a normal mmdet config (``load_from`` = the pruned checkpoint, sparsity hook
removed) that ``tools/train.py``/``tools/test.py`` and config inheritance use as they are.
"""
import copy
import json
import os
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.deploy.complexity import params_and_flops
from kd_det.deploy.dense_forward import DenseForward
from kd_det.pruning.channel_groups import (FAMILIES, ChannelGroup, find_channel_groups,
                                                fusion_edges, mobilenet_v2_blocks)
from kd_det.pruning.importance import channel_rms


@dataclass
class PruningPlan:
    """What to remove: kept channel indices per group, fusion edges to drop, config values."""
    keep: Dict[str, torch.Tensor]
    dropped_edges: List[str]
    config: Dict[str, int]
    families: Tuple[str, ...] = FAMILIES
    channels: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # group: (kept, total)


def _select_channels(groups: Sequence[ChannelGroup], ratio: Optional[float],
                     threshold: Optional[float], min_channels: int,
                     divisor: int) -> Dict[str, int]:
    """Number of channels each group keeps."""
    counts = {}
    if threshold is not None:
        for group in groups:
            counts[group.name] = int((channel_rms(group) > threshold).sum())
    else:
        for family in FAMILIES:
            members = [g for g in groups if g.family == family]
            if not members:
                continue
            scores = torch.cat([channel_rms(g) for g in members])
            owner = torch.cat([torch.full((g.num_channels, ), i) for i, g in enumerate(members)])
            removed = owner[scores.argsort(stable=True)[:int(round(ratio * len(scores)))]]
            for i, group in enumerate(members):
                counts[group.name] = group.num_channels - int((removed == i).sum())
    for group in groups:
        count = max(counts[group.name], min_channels)
        counts[group.name] = min(-(-count // divisor) * divisor, group.num_channels)
    # groups that share a config value keep the same count (the largest asked for)
    by_key = defaultdict(list)
    for group in groups:
        by_key[group.config_keys].append(group)
    for members in by_key.values():
        shared = max(counts[g.name] for g in members)
        for group in members:
            counts[group.name] = shared
    return counts


def _select_edges(detector: nn.Module, edge_threshold: float) -> List[str]:
    """Fusion edges to drop: zero weight, or normalised weight at or below ``edge_threshold``;
    the strongest edge of each node always stays."""
    by_node = defaultdict(list)
    for edge, (node, position) in fusion_edges(detector).items():
        by_node[id(node)].append((edge, node, position))
    dropped = []
    for edges in by_node.values():
        node = edges[0][1]
        weights = torch.relu(node.fusion_weight.detach())
        normalised = weights / (weights.sum() + node.eps)
        strongest = int(weights.argmax())
        for edge, _, position in edges:
            dead = weights[position] <= 0 if edge_threshold <= 0 else \
                normalised[position] <= edge_threshold
            if dead and position != strongest:
                dropped.append(edge)
    return dropped


def plan_pruning(detector: nn.Module, ratio: Optional[float] = None,
                 threshold: Optional[float] = None, families: Sequence[str] = FAMILIES,
                 edge_threshold: float = 0.0, min_channels: int = 1,
                 divisor: int = 8) -> PruningPlan:
    """Decide what to remove from ``detector`` (a plain mmdet detector, weights loaded).

    Args:
        ratio: fraction of each family's channels to remove, lowest RMS scale first.
        threshold: remove channels whose RMS scale is at or below this (0: exact zeros only).
            Exactly one of ``ratio`` and ``threshold`` is given.
        families: channel group families to prune (``'neck'``, ``'head'``, ``'backbone'``).
        edge_threshold: also drop fusion edges whose normalised weight is at most this
            (0: only edges whose weight is exactly zero after ReLU).
        min_channels: every group keeps at least this many channels.
        divisor: round every kept count up to a multiple of this; the extra channels are the
            next-ranked ones (zero channels stay exact). 8 by default: a 50%-pruned embedded
            student with odd widths ran no faster in onnxruntime than the unpruned one, rounded
            to multiples of 8 it ran twice as fast (configs/sparse_bifpn/README.md).
    """
    if (ratio is None) == (threshold is None):
        raise ValueError('give exactly one of ratio (fraction of channels to remove) and '
                         'threshold (RMS scale at or below which a channel is removed)')
    if ratio is not None and not 0 <= ratio < 1:
        raise ValueError(f'ratio must be in [0, 1), got {ratio}')
    groups = find_channel_groups(detector, families)
    if divisor < 1:
        raise ValueError(f'divisor must be at least 1, got {divisor}')
    counts = _select_channels(groups, ratio, threshold, min_channels, divisor)
    keep, config, channels = {}, {}, {}
    for group in groups:
        order = channel_rms(group).argsort(descending=True, stable=True)
        keep[group.name] = order[:counts[group.name]].sort().values
        channels[group.name] = (counts[group.name], group.num_channels)
        for key in group.config_keys:
            config[key] = counts[group.name]
    dropped = _select_edges(detector, edge_threshold) if 'neck' in families else []
    return PruningPlan(keep, dropped, config, tuple(families), channels)


def _set_config_value(cfg: Config, key: str, value) -> None:
    *path, last = key.split('.')
    node = cfg
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def pruned_config(cfg: Config, detector: nn.Module, plan: PruningPlan) -> Config:
    """``cfg`` (a plain detector config) with the plan's widths and dropped edges."""
    cfg = copy.deepcopy(cfg)
    if any(key.startswith('model.backbone.mid_channels') for key in plan.config):
        cfg.model.backbone.type = 'SlimMobileNetV2'
        cfg.model.backbone.mid_channels = [
            block.depthwise_conv.conv.out_channels
            for _, block in mobilenet_v2_blocks(detector.backbone)]
    for key, value in plan.config.items():
        _set_config_value(cfg, key, value)
    if plan.dropped_edges:
        cfg.model.neck.dropped_edges = sorted(
            set(cfg.model.neck.get('dropped_edges', [])) | set(plan.dropped_edges))
    return cfg


def pruned_state_dict(detector: nn.Module, pruned: nn.Module, groups: Sequence[ChannelGroup],
                      plan: PruningPlan) -> Dict[str, torch.Tensor]:
    """``detector``'s weights cut to ``pruned``'s shapes: kept channels, alive fusion edges."""
    source = detector.state_dict()
    cuts = defaultdict(list)
    for group in groups:
        for key, dim in group.slices:
            cuts[key].append((dim, plan.keep[group.name]))
    old_edges = {name: node.inputs for name, node in _fusion_nodes(detector).items()}
    new_edges = {name: node.inputs for name, node in _fusion_nodes(pruned).items()}
    state = {}
    for key, target in pruned.state_dict().items():
        if key not in source:
            raise RuntimeError(f'pruned model has {key!r}, which {type(detector).__name__} lacks')
        tensor = source[key]
        for dim, index in cuts.get(key, []):
            tensor = tensor.index_select(dim, index)
        node_name = key[:-len('.fusion_weight')]
        if key.endswith('.fusion_weight') and node_name in new_edges:
            positions = [old_edges[node_name].index(edge) for edge in new_edges[node_name]]
            tensor = tensor[positions]
        if tensor.shape != target.shape:
            raise RuntimeError(f'{key}: cut to {tuple(tensor.shape)} but the pruned model has '
                               f'{tuple(target.shape)}; a channel group misses this tensor')
        state[key] = tensor.clone()
    return state


def _fusion_nodes(detector: nn.Module) -> Dict[str, nn.Module]:
    from kd_det.models.necks.sparse_bifpn import FusionNode
    return {name: module for name, module in detector.named_modules()
            if isinstance(module, FusionNode)}


def prune_detector(detector: nn.Module, cfg: Config,
                   plan: PruningPlan) -> Tuple[nn.Module, Config]:
    """Build the smaller detector of ``plan`` and load the kept weights (strictly)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    groups = find_channel_groups(detector, plan.families)
    new_cfg = pruned_config(cfg, detector, plan)
    init_default_scope('mmdet')
    pruned = MODELS.build(new_cfg.model)
    pruned.load_state_dict(pruned_state_dict(detector, pruned, groups, plan), strict=True)
    return pruned.eval(), new_cfg


@torch.no_grad()
def max_output_change(before: nn.Module, after: nn.Module,
                      input_shape: Sequence[int] = (3, 160, 160), seed: int = 0) -> float:
    """Largest absolute difference between two detectors' raw head outputs on one random
    batch of 2 (eval mode)."""
    images = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(seed))
    outs_before = DenseForward(before).eval()(images)
    outs_after = DenseForward(after).eval()(images)
    return max(float((a - b).abs().max()) for a, b in zip(outs_before, outs_after))


PRUNING_HOOKS = ('SparsityHook', 'FisherPruningHook')


def _without_pruning_hooks(cfg: Config) -> None:
    """The pruned model fine-tunes as it is: no sparsity or pruning hook, no init from the
    unpruned weights (``load_from`` gives the pruned ones)."""
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') not in
                        PRUNING_HOOKS]
    init_cfg = cfg.model.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg.model.pop('init_cfg')


def prune_checkpoint(config: str, checkpoint: str, out_dir: str, ratio: Optional[float] = None,
                     threshold: Optional[float] = None, families: Sequence[str] = FAMILIES,
                     edge_threshold: float = 0.0, min_channels: int = 1, divisor: int = 8,
                     input_shape: Sequence[int] = (3, 160, 160),
                     finetune_config: Optional[str] = None, latency: bool = False) -> Dict:
    """Prune a checkpoint of ``config`` (a detector or a distillation config: its student) and
    write ``pruned.py``, ``pruned.pth`` and ``prune_report.json`` into ``out_dir``.

    Args:
        finetune_config: take everything but ``model`` (schedule, optimizer, data, hooks) from
            this config instead of ``config``, so ``pruned.py`` is ready to fine-tune.
        latency: also time both models (PyTorch and onnxruntime, batch 1, one thread).
        Others: see :func:`plan_pruning`.

    The written config is reloaded with the written checkpoint and checked against the pruned
    model in memory before returning.

    Returns:
        the report: channels kept per group, dropped edges, params and FLOPs before and after,
        the largest change of the head outputs, and the written paths.
    """
    detector = build_student(config, checkpoint)
    cfg = student_config(load_config(config))
    if finetune_config:
        recipe = student_config(load_config(finetune_config))
        model = cfg.model
        cfg = recipe
        cfg.model = model
    plan = plan_pruning(detector, ratio, threshold, families, edge_threshold, min_channels,
                        divisor)
    pruned, new_cfg = prune_detector(detector, cfg, plan)

    os.makedirs(out_dir, exist_ok=True)
    out_cfg, out_ckpt = osp.join(out_dir, 'pruned.py'), osp.join(out_dir, 'pruned.pth')
    before, after = params_and_flops(detector, input_shape), params_and_flops(pruned,
                                                                              input_shape)
    report = dict(
        source_config=config, source_checkpoint=checkpoint, ratio=ratio, threshold=threshold,
        families=list(families), edge_threshold=edge_threshold, divisor=divisor,
        channels={name: list(kept_total) for name, kept_total in plan.channels.items()},
        dropped_edges=sorted(plan.dropped_edges), config_changes=dict(plan.config),
        params_before=before['params'], params_after=after['params'],
        flops_before=before['flops'], flops_after=after['flops'],
        flops_ratio=after['flops'] / before['flops'],
        params_ratio=after['params'] / before['params'],
        max_output_change=max_output_change(detector, pruned, input_shape),
        config=out_cfg, checkpoint=out_ckpt)
    if latency:
        from kd_det.deploy.latency import compare_deployment
        timed = compare_deployment(dict(before=detector, after=pruned), out_dir, input_shape)
        for key in ('latency_torch_ms', 'latency_ort_ms'):
            report[f'{key}_before'] = timed['before'][key]
            report[f'{key}_after'] = timed['after'][key]
        report['onnx_max_abs_diff_after'] = timed['after']['onnx_max_abs_diff']

    new_cfg.load_from = out_ckpt
    new_cfg.resume = False
    new_cfg.pop('work_dir', None)
    _without_pruning_hooks(new_cfg)
    new_cfg.dump(out_cfg)
    with open(out_cfg) as f:
        body = f.read()
    with open(out_cfg, 'w') as f:
        f.write(f'# Pruned by kd_det.pruning.prune from\n#   {config}\n#   {checkpoint}\n'
                f'# {_summary(report)}.\n# Fine-tune: python tools/train.py {out_cfg}\n{body}')
    tmp = out_ckpt + '.tmp'
    torch.save(dict(state_dict=pruned.state_dict(), meta=dict(pruning=_plain(report))), tmp)
    os.replace(tmp, out_ckpt)
    with open(osp.join(out_dir, 'prune_report.json'), 'w') as f:
        json.dump(report, f, indent=2)

    reloaded = build_student(out_cfg, out_ckpt)
    if max_output_change(pruned, reloaded, input_shape) != 0.0:
        raise RuntimeError(f'{out_cfg} + {out_ckpt} do not reproduce the pruned model')
    return report


def _plain(report: Dict) -> Dict:
    return json.loads(json.dumps(report))


def _summary(report: Dict) -> str:
    how = f'ratio {report["ratio"]}' if report['ratio'] is not None else \
        f'threshold {report["threshold"]}'
    return (f'{how}: params {report["params_before"]} -> {report["params_after"]}, FLOPs '
            f'{report["flops_before"]} -> {report["flops_after"]}, '
            f'{len(report["dropped_edges"])} fusion edges dropped')


__all__ = ['PruningPlan', 'plan_pruning', 'pruned_config', 'pruned_state_dict',
           'prune_detector', 'prune_checkpoint', 'max_output_change']
