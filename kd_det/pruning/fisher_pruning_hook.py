"""Progressive pruning during training: remove the channels whose loss cost per FLOP is lowest,
a few at a time, until a FLOPs target; write the physically smaller model at the end."""
import copy
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from kd_det.pruning.channel_groups import FAMILIES, ChannelGroup, find_channel_groups
from kd_det.pruning.conv_cost import ConvCost
from kd_det.pruning.fisher import FisherImportance
from kd_det.pruning.sparsity_hook import detector_of

CHECKPOINT_KEY = 'fisher_pruning_hook'
SCHEDULES = ('cubic', 'linear')


def flops_schedule(progress: float, target: float, kind: str = 'linear') -> float:
    """FLOPs ratio to reach at ``progress`` in [0, 1] of the pruning window.

    ``'linear'`` removes the same share of FLOPs at every step (as mmrazor's GroupFisher
    configs do). ``'cubic'`` is the gradual schedule of Zhu & Gupta (*To prune, or not to
    prune*, 2017): ``target + (1 - target) * (1 - progress) ** 3``, fast while the network is
    redundant and slow near the target; in a short fine-tune its first steps remove a large
    share (a fifth of the FLOPs in the first of 20 steps to 50 %) on importance gathered over a
    few iterations, and cost 1.3-1.9 mAP against the linear schedule on the embedded student
    (configs/pruning/README.md).
    """
    progress = min(max(progress, 0.0), 1.0)
    remaining = (1.0 - progress) ** 3 if kind == 'cubic' else 1.0 - progress
    return target + (1.0 - target) * remaining


@HOOKS.register_module()
class FisherPruningHook(Hook):
    """Prunes the trained detector (the student of a distiller) progressively to a FLOPs target.

    Every ``interval`` iterations inside the pruning window ``[begin, end]`` the hook removes
    channels until the detector's FLOPs fall to :func:`flops_schedule`'s ratio. Each removal
    takes one *unit*: ``divisor`` channels from every group that shares a config width (the
    four convs of a RetinaNet head share ``feat_channels``; an FPN's laterals and outputs share
    ``out_channels``), those with the lowest Fisher importance
    (:class:`~kd_det.pruning.fisher.FisherImportance`, accumulated since the last removal), and
    the unit with the lowest ``importance / MACs saved`` goes first (GroupFisher's FLOPs
    normalisation), among the units that do not take the FLOPs more than ``overshoot`` below
    ``flops_target``. Removed channels are masked: their scales are set to zero after every
    optimizer step, so they are exact zeros and the network trains on without them; after
    ``end`` it is fine-tuned at its final size until training stops.

    At the end of training (in the main process) the masked channels are cut out
    (:func:`kd_det.pruning.prune.prune_checkpoint` with ``threshold=0``: outputs unchanged) into
    ``<work_dir>/pruned/``: ``pruned.py`` (a plain mmdet config, this run's recipe, the hook
    removed), ``pruned.pth`` and ``prune_report.json``.

    Logged every iteration: ``pruning/flops_ratio`` (estimated from the conv MACs; the exact
    count after cutting is in the report) and ``pruning/<family>_channels`` (alive fraction).
    Masks and importance are saved in checkpoints, so a resumed run continues where it was;
    under distributed training the importance is summed over the processes before each removal,
    so every process removes the same channels.

    Args:
        flops_target (float): FLOPs of the pruned detector as a fraction of the unpruned one,
            in (0, 1), e.g. 0.5.
        begin (int): iteration (epoch with ``by_epoch``) where the pruning window starts; the
            first removal is ``interval`` iterations later. Defaults to 0.
        end (int): iteration (epoch) where the target is reached. Required.
        interval (int): iterations between removals (importance accumulates meanwhile).
            Defaults to 10.
        by_epoch (bool): ``begin``/``end`` are epochs. Defaults to False.
        families (Sequence[str]): which channel group families may be pruned. Defaults to all
            (``'neck'``, ``'head'``, ``'backbone'``).
        divisor (int): channels removed per group at a time, so widths stay multiples of it
            (8: onnxruntime's CPU convs are much faster at such widths). Defaults to 8.
        min_channels (int): every group keeps at least this many. Defaults to ``divisor``.
        schedule (str): ``'linear'`` or ``'cubic'`` (:func:`flops_schedule`). Defaults to
            ``'linear'``.
        overshoot (float): how far (a fraction of the FLOPs) a removal may take the network
            below ``flops_target``; near the end, units that would go further wait while a
            smaller one fits (a head unit of RetinaNet's four convs is several % of the FLOPs,
            a backbone unit a fraction of a %), so the network ends at its target, not below
            it. Defaults to 0.005.
        write_pruned (bool): cut the model into ``<work_dir>/pruned/`` after training.
            Defaults to True.
    """
    priority = 'NORMAL'  # after the optimizer step, before CheckpointHook (VERY_LOW) saves

    def __init__(self, flops_target: float, end: int, begin: int = 0, interval: int = 10,
                 by_epoch: bool = False, families: Sequence[str] = FAMILIES, divisor: int = 8,
                 min_channels: Optional[int] = None, schedule: str = 'linear',
                 overshoot: float = 0.005, write_pruned: bool = True):
        if not isinstance(flops_target, (int, float)) or not 0 < flops_target < 1:
            raise ValueError(f'flops_target must be a fraction in (0, 1) of the unpruned '
                             f"detector's FLOPs, e.g. 0.5; got {flops_target!r}")
        if not 0 <= begin < end:
            raise ValueError(f'the pruning window needs 0 <= begin < end; got begin={begin}, '
                             f'end={end}')
        if interval < 1 or divisor < 1:
            raise ValueError(f'interval and divisor must be >= 1; got interval={interval}, '
                             f'divisor={divisor}')
        if schedule not in SCHEDULES:
            raise ValueError(f'schedule must be one of {SCHEDULES}; got {schedule!r}')
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise ValueError(f'unknown families {sorted(unknown)}; choose from {FAMILIES}')
        self.flops_target = float(flops_target)
        self.begin, self.end, self.interval = begin, end, interval
        self.by_epoch = by_epoch
        self.families = tuple(families)
        self.divisor = divisor
        self.min_channels = divisor if min_channels is None else min_channels
        self.schedule = schedule
        self.write_pruned = write_pruned
        self.overshoot = overshoot
        self.groups: List[ChannelGroup] = []
        self.alive: Dict[str, torch.Tensor] = {}
        self.fisher: Optional[FisherImportance] = None
        self.cost: Optional[ConvCost] = None
        self.base_flops = 0.0
        self.base_conv_macs = 0.0
        self._window: Tuple[int, int] = (begin, end)
        self._loaded: Optional[dict] = None
        self._image_shape: Tuple[int, ...] = ()
        self._unreachable_warned = False

    # ---- set-up -------------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        if self.by_epoch:
            per_epoch = len(runner.train_dataloader)
            self._window = (self.begin * per_epoch, self.end * per_epoch)
        if self._window[1] > runner.max_iters:
            raise ValueError(f'FisherPruningHook: the pruning window ends at iteration '
                             f'{self._window[1]}, after training ends ({runner.max_iters}); '
                             'lower `end`')

    def _set_up(self, runner, data_batch) -> None:
        from kd_det.deploy.complexity import params_and_flops
        detector = detector_of(runner.model)
        self.groups = find_channel_groups(detector, self.families)
        if not self.groups:
            raise ValueError(f'FisherPruningHook: {type(detector).__name__} has no prunable '
                             f'channel group in families {self.families} (see '
                             'kd_det.pruning.channel_groups for what is covered)')
        image_shape = self._image_shape = tuple(data_batch['inputs'][0].shape[-3:])
        param = next(detector.parameters())
        image = torch.zeros(1, *image_shape, device=param.device, dtype=param.dtype)
        self.cost = ConvCost(detector, self.groups, image)
        self.base_conv_macs = self.cost.conv_macs()
        self.base_flops = float(params_and_flops(copy.deepcopy(detector).cpu(),
                                                 image_shape)['flops'])
        self.alive = {g.name: torch.ones(g.num_channels, dtype=torch.bool) for g in self.groups}
        self.fisher = FisherImportance(self.groups)
        if self._loaded is not None:
            self._restore(self._loaded)
        self.fisher.attach()
        self.apply_masks()
        print_log(f'FisherPruningHook: {len(self.groups)} channel groups, '
                  f'{self.base_flops / 1e6:.1f} MFLOPs at {image_shape}; pruning to '
                  f'{self.flops_target:.0%} between iterations {self._window[0]} and '
                  f'{self._window[1]}, every {self.interval}', logger='current')

    # ---- masks and estimates ------------------------------------------------------------------
    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the scales of every removed channel."""
        for group in self.groups:
            dead = ~self.alive[group.name]
            if dead.any():
                for param in group.scales:
                    param.view(group.num_channels, -1)[dead.to(param.device)] = 0

    def flops_ratio(self) -> float:
        """Estimated FLOPs now / FLOPs before pruning."""
        return (self.base_flops - self.base_conv_macs + self.cost.conv_macs()) / self.base_flops

    def _units(self) -> List[List[ChannelGroup]]:
        """Groups that lose channels together: those sharing a config width."""
        by_key = defaultdict(list)
        for group in self.groups:
            by_key[group.config_keys].append(group)
        return list(by_key.values())

    def _candidate(self, unit: List[ChannelGroup]) -> Optional[Tuple[float, dict, float]]:
        """(importance per MAC, {group: channel indices}, MACs saved) of removing ``divisor``
        channels of every group in ``unit``; None if a group would drop below
        ``min_channels``."""
        chosen, importance, cost = {}, 0.0, 0.0
        for group in unit:
            alive = self.alive[group.name]
            if int(alive.sum()) - self.divisor < self.min_channels:
                return None
            scores = self.fisher.importance[group.name].masked_fill(~alive, math.inf)
            lowest = scores.argsort(stable=True)[:self.divisor]
            chosen[group.name] = lowest
            importance += float(scores[lowest].sum())
            cost += self.cost.channel_cost(group.name) * self.divisor
        return importance / max(cost, 1e-12), chosen, cost

    def prune_to(self, ratio: float) -> int:
        """Remove units, cheapest first, until the FLOPs ratio is at most ``ratio``; returns
        the number of channels removed."""
        removed = 0
        while self.flops_ratio() > ratio:
            candidates = [c for c in map(self._candidate, self._units()) if c is not None]
            if not candidates:
                if not self._unreachable_warned:
                    print_log(f'FisherPruningHook: every group is at min_channels; FLOPs stay '
                              f'at {self.flops_ratio():.1%}, above the target {ratio:.1%}',
                              logger='current', level=30)
                    self._unreachable_warned = True
                break
            # the cheapest unit that does not take the FLOPs more than `overshoot` below the
            # final target (a head unit can be several % of the FLOPs); else the smallest one
            current = self.flops_ratio()
            within = [c for c in candidates
                      if current - c[2] / self.base_flops >= self.flops_target - self.overshoot]
            _, chosen, _ = min(within, key=lambda c: c[0]) if within else \
                min(candidates, key=lambda c: c[2])
            for name, index in chosen.items():
                self.alive[name][index] = False
                self.cost.remove(name, len(index))
                removed += len(index)
        self.apply_masks()
        return removed

    # ---- training -----------------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.fisher is None:
            self._set_up(runner, data_batch)

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.fisher.end_iteration()
        done = runner.iter + 1
        begin, end = self._window
        if begin < done <= end and ((done - begin) % self.interval == 0 or done == end):
            self._sum_importance_over_processes(runner)
            target = flops_schedule((done - begin) / (end - begin), self.flops_target,
                                    self.schedule)
            if self.prune_to(target):
                self.fisher.reset()
        self.apply_masks()
        hub = runner.message_hub
        hub.update_scalar('train/pruning/flops_ratio', self.flops_ratio())
        for family in self.families:
            members = [g for g in self.groups if g.family == family]
            if members:
                alive = sum(int(self.alive[g.name].sum()) for g in members)
                hub.update_scalar(f'train/pruning/{family}_channels',
                                  alive / sum(g.num_channels for g in members))

    def _sum_importance_over_processes(self, runner) -> None:
        """Under distributed training every process sees its own batches: sum the importance
        so that all of them remove the same channels."""
        from mmengine.dist import all_reduce, get_world_size
        if get_world_size() == 1:
            return
        device = next(detector_of(runner.model).parameters()).device
        for name, importance in self.fisher.importance.items():
            summed = importance.to(device)
            all_reduce(summed, op='sum')
            self.fisher.importance[name] = summed.cpu()

    def after_train(self, runner) -> None:
        if self.fisher is not None:
            self.fisher.detach()
        from mmengine.dist import is_main_process
        if not self.write_pruned or self.fisher is None or not is_main_process():
            return
        from kd_det.pruning.prune import prune_checkpoint
        last = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.isfile(last):
            print_log('FisherPruningHook: no checkpoint was saved; nothing cut out (run '
                      'tools/prune.py CONFIG CHECKPOINT --threshold 0 on a checkpoint of this '
                      'run)', logger='current', level=30)
            return
        with open(last) as f:
            checkpoint = f.read().strip()
        # the config mmengine's runner saved into the work dir (with every --cfg-options)
        config = osp.join(runner.work_dir, osp.basename(runner.cfg.filename or 'config.py'))
        if not osp.isfile(config):
            runner.cfg.dump(config)
        report = prune_checkpoint(config, checkpoint, osp.join(runner.work_dir, 'pruned'),
                                  threshold=0.0, families=self.families, divisor=1,
                                  input_shape=self._image_shape)
        print_log(f'FisherPruningHook: {report["flops_ratio"]:.1%} of the FLOPs, '
                  f'{report["params_ratio"]:.1%} of the params; pruned model in '
                  f'{osp.dirname(report["config"])} (largest output change '
                  f'{report["max_output_change"]:.2e})', logger='current')

    # ---- checkpoints --------------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.fisher is not None:
            checkpoint[CHECKPOINT_KEY] = dict(
                alive={k: v.clone() for k, v in self.alive.items()},
                importance={k: v.clone() for k, v in self.fisher.importance.items()})

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def _restore(self, state: dict) -> None:
        for name, alive in state['alive'].items():
            if name not in self.alive or alive.shape != self.alive[name].shape:
                raise RuntimeError(f'FisherPruningHook: the checkpoint masks group {name!r} '
                                   'that this model does not have in that width')
            self.alive[name] = alive.clone()
            self.cost.remove(name, int((~alive).sum()))
        for name, importance in state['importance'].items():
            self.fisher.importance[name] = importance.clone()


__all__ = ['FisherPruningHook', 'flops_schedule']
