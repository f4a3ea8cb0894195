"""GroupFisher pruning (mmrazor) of a detector to a FLOPs target while it fine-tunes, and the
physically pruned plain detector it leaves.

Liu et al., "Group Fisher Pruning for Practical Network Compression", ICML 2021; the algorithm,
its channel units and hooks are mmrazor's (``mmrazor.implementations.pruning.group_fisher``).
mmrazor's mutator removes one channel each time the algorithm asks (every ``interval``
iterations) and never stops; upstream therefore prunes in one run, saves the checkpoint that
crosses the target and fine-tunes it in a second run. The pruned rows of kd_det's benchmark get
one 4-epoch fine-tune instead, so :class:`FlopsTargetGroupFisherMutator` removes as many of the
least important channels per step as a linear FLOPs schedule asks, reaches the target by a set
iteration and then only trains. :func:`build_pruned_detector` turns a run's checkpoint (weights
+ channel masks) into a plain mmdet detector with fewer channels; the files a run leaves and the
report are :mod:`kd_det.pruning.group_fisher_export`'s.
"""
import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

import kd_det  # noqa: F401  (compat shims first: mmrazor cannot be imported without them)
from mmengine.logging import print_log
from mmrazor.implementations.pruning.group_fisher import GroupFisherChannelMutator
from mmrazor.registry import MODELS
from mmrazor.utils import RuntimeInfo

from kd_det.apis.runner import load_config
from kd_det.deploy.complexity import params_and_flops
from kd_det.utils.checkpoint import load_state_dict_strict

GROUP_FISHER_TYPES = ('GroupFisherAlgorithm', 'mmrazor.GroupFisherAlgorithm')


@MODELS.register_module()
class FlopsTargetGroupFisherMutator(GroupFisherChannelMutator):
    """GroupFisher's channel mutator, pruning on a FLOPs schedule down to a target.

    At every pruning step (mmrazor's ``GroupFisherAlgorithm`` calls :meth:`try_prune` every
    ``interval`` iterations) it removes the channels of lowest normalised Fisher importance
    (stock GroupFisher removes one) until the network's FLOPs are at most the scheduled
    fraction of the original: ``1 - (1 - target_flops_ratio) * min(1, iter / prune_until_iter)``.
    Once the FLOPs are at or below ``target_flops_ratio`` it stops pruning and stops recording
    Fisher information (no hooks, no overhead), so the rest of the run is plain fine-tuning.

    FLOPs are :func:`kd_det.deploy.complexity.params_and_flops`'s (mmengine's FlopAnalyzer,
    the count every benchmark row reports) of the masked architecture at ``input_shape``; one
    measurement takes about 0.8 s for the embedded student at 1x3x160x160.

    Args:
        target_flops_ratio (float): final FLOPs as a fraction of the unpruned network's, in
            (0, 1]. Defaults to 0.5.
        prune_until_iter (int): the iteration at which the schedule reaches the target.
            Defaults to 250.
        input_shape (Sequence[int]): ``(1, 3, H, W)`` of the FLOPs measurement. Defaults to
            ``(1, 3, 160, 160)``.
        **kwargs: ``GroupFisherChannelMutator``'s ``channel_unit_cfg`` and ``parse_cfg``.
    """
    # how far (fraction of the original FLOPs) a multi-channel chunk may go below the schedule
    OVERSHOOT = 0.01

    def __init__(self, target_flops_ratio: float = 0.5, prune_until_iter: int = 250,
                 input_shape: Sequence[int] = (1, 3, 160, 160), **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < target_flops_ratio <= 1:
            raise ValueError('model.mutator.target_flops_ratio must be in (0, 1], got '
                             f'{target_flops_ratio!r}')
        if prune_until_iter < 1:
            raise ValueError('model.mutator.prune_until_iter must be a positive iteration, got '
                             f'{prune_until_iter!r}')
        if len(input_shape) != 4 or input_shape[0] != 1:
            raise ValueError('model.mutator.input_shape must be (1, 3, H, W), got '
                             f'{input_shape!r}')
        self.target_flops_ratio = target_flops_ratio
        self.prune_until_iter = prune_until_iter
        self.input_shape = tuple(input_shape)
        self.original_flops: Optional[int] = None
        self.finished = False
        # FLOPs fraction saved per removed channel, from the last measured chunk
        self._ratio_per_channel: Optional[float] = None
        # (active channels, FLOPs fraction) of the last measurement: masks change only here
        self._measured: Optional[Tuple[int, float]] = None
        # held in a list, not as an attribute: the architecture must not become a submodule
        # of the mutator (its weights would be saved twice)
        self._supernet = []

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Make ``supernet`` dynamic (mmrazor) and measure its unpruned FLOPs."""
        super().prepare_from_supernet(supernet)
        self._supernet = [supernet]
        self.original_flops = self.flops()

    def flops(self) -> int:
        """FLOPs of the architecture with its current channel masks (one forward, no grad)."""
        supernet = self._supernet[0]
        training = supernet.training
        flops = params_and_flops(supernet, self.input_shape[1:])['flops']
        supernet.train(training)
        return flops

    def flops_ratio(self) -> float:
        """FLOPs of the masked architecture as a fraction of the unpruned one's."""
        active = self.active_channels()
        if self._measured is None or self._measured[0] != active:
            self._measured = (active, self.flops() / self.original_flops)
        return self._measured[1]

    def scheduled_flops_ratio(self, iteration: int) -> float:
        """The FLOPs fraction the schedule asks for at ``iteration`` (1 at iteration 0)."""
        progress = min(1.0, iteration / self.prune_until_iter)
        return 1 - (1 - self.target_flops_ratio) * progress

    def active_channels(self) -> int:
        """Channels still active in all prunable units."""
        return sum(int(unit.mutable_channel.activated_channels) for unit in self.mutable_units)

    def remove_least_important(self, count: int) -> int:
        """Mask the ``count`` channels of lowest importance over all units, each unit keeping at
        least one: what ``count`` calls of mmrazor's ``try_prune`` remove, in one pass.

        Returns:
            The number of channels masked: 0 when an importance is NaN (mmrazor then skips the
            step) or no unit has a channel to spare.
        """
        scores, owners = [], []
        for unit in self.mutable_units:
            importance = unit.importance()  # (C, ), masked channels at max + 1
            if importance.isnan().any():
                print_log(f'{unit.name}: NaN Fisher importance, this pruning step is skipped',
                          logger='current', level=logging.WARNING)
                return 0
            active = unit.mutable_channel.current_mask.nonzero().flatten()
            spare = active[active != active[importance[active].argmax()]]
            scores.append(importance[spare])
            owners += [(unit, int(channel)) for channel in spare]
        if not owners:
            return 0
        lowest = torch.cat(scores).argsort()[:count]
        for index in lowest.tolist():
            unit, channel = owners[index]
            unit.mutable_channel.mask[channel] = 0.0
        return len(lowest)

    def try_prune(self) -> None:
        """Remove least-important channels until the FLOPs meet this iteration's schedule.

        Channels go in chunks sized from the FLOPs per channel of the last chunk (80 % of what
        that rate says is still needed), so a step that removes a hundred cheap backbone
        channels measures a few times, not a hundred. Channels differ a lot in cost (a head
        channel is ~1.4 % of the student's FLOPs, a late backbone channel ~0.01 %): a chunk
        that goes more than ``OVERSHOOT`` below the schedule is undone (masks restored) and
        retried at half its size.
        """
        if self.finished:
            return
        iteration = RuntimeInfo.iter()
        scheduled = self.scheduled_flops_ratio(iteration)
        ratio = self.flops_ratio()
        removed, forced_chunk = 0, None
        while ratio > scheduled:
            chunk = forced_chunk or (1 if self._ratio_per_channel is None else max(
                1, int(0.8 * (ratio - scheduled) / self._ratio_per_channel)))
            masks = [unit.mutable_channel.mask.clone() for unit in self.mutable_units]
            chunk_removed = self.remove_least_important(chunk)
            if chunk_removed == 0:
                break
            new_ratio = self.flops_ratio()
            saved = ratio - new_ratio
            self._ratio_per_channel = saved / chunk_removed if saved > 0 else None
            if new_ratio < scheduled - self.OVERSHOOT and chunk_removed > 1:
                for unit, mask in zip(self.mutable_units, masks):
                    unit.mutable_channel.mask.copy_(mask)
                forced_chunk = chunk_removed // 2
                continue
            forced_chunk = None
            removed += chunk_removed
            ratio = new_ratio
        self.finished = ratio <= self.target_flops_ratio
        if removed:
            print_log(f'GroupFisher iter {iteration}: removed {removed} channels, FLOPs '
                      f'{ratio:.3f} of the original (scheduled {scheduled:.3f}, target '
                      f'{self.target_flops_ratio})' + (', target reached' if self.finished
                                                       else ''), logger='current')

    def start_record_info(self) -> None:
        if not self.finished:
            super().start_record_info()

    def update_imp(self) -> None:
        if not self.finished:
            super().update_imp()


def build_group_fisher_algorithm(config: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """The GroupFisher algorithm of ``config`` with its architecture's ``init_cfg`` removed
    (the weights come from a checkpoint loaded afterwards; nothing is read at build)."""
    from mmengine.registry import init_default_scope
    cfg = load_config(config, cfg_options=cfg_options)
    if cfg.model.get('type') not in GROUP_FISHER_TYPES:
        raise ValueError(f'{config} is not a GroupFisher config: model.type is '
                         f'{cfg.model.get("type")!r}, expected GroupFisherAlgorithm')
    cfg.model.architecture.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def pruning_structure(algorithm: nn.Module) -> Dict[str, Tuple[int, int]]:
    """``{unit name: (kept channels, original channels)}`` of a GroupFisher algorithm.

    A unit is a set of layers whose channels must be pruned together (a conv's output, the
    BN after it and every conv reading it; a residual sum ties its branches into one unit).
    """
    return {unit.name: (int(unit.mutable_channel.activated_channels), unit.num_channels)
            for unit in algorithm.mutator.mutable_units}


def build_pruned_detector(config: str, checkpoint: str,
                          cfg_options: Optional[dict] = None) -> Tuple[nn.Module, Dict]:
    """The physically pruned plain detector of a GroupFisher run, with the run's weights.

    The checkpoint (``epoch_N.pth`` of ``tools/train.py`` on the GroupFisher config) holds the
    algorithm: the masked architecture (``architecture.*``) and every unit's channel mask
    (``mutator.units.K.mutable_channel.mask``). The masks are applied to a freshly traced
    algorithm, then mmrazor's ``export_fix_subnet`` / ``load_fix_subnet`` replace each dynamic
    op by a static one holding only the kept channels.

    Returns:
        ``(detector, structure)``: an mmdet detector in eval mode (``extract_feat``,
        ``bbox_head``, ``predict`` and ``forward(inputs, mode='tensor')`` on ``(N, 3, H, W)``
        work as for the unpruned student) and :func:`pruning_structure`'s dict.

    Raises:
        CheckpointMismatchError: the checkpoint is not of this GroupFisher config.
    """
    algorithm = build_group_fisher_algorithm(config, cfg_options)
    load_state_dict_strict(algorithm, checkpoint, role='GroupFisher')
    structure = pruning_structure(algorithm)
    return compact_architecture(algorithm), structure


def compact_architecture(algorithm: nn.Module) -> nn.Module:
    """Replace, in place, every dynamic op of ``algorithm.architecture`` by a static one holding
    only its unit's kept channels (mmrazor's ``export_fix_subnet`` / ``load_fix_subnet``, kept
    channels in their original order); returns the architecture, in eval mode."""
    from mmrazor.structures.subnet.fix_subnet import export_fix_subnet, load_fix_subnet
    detector = algorithm.architecture
    load_fix_subnet(detector, export_fix_subnet(detector)[0])
    return detector.eval()
