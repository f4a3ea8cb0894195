"""Sparsity training: group lasso on prunable channel groups and L1 on BiFPN fusion weights."""
from typing import Dict, List, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from kd_det.pruning.group_lasso import group_lasso, group_lasso_prox, relu_l1_prox
from kd_det.pruning.channel_groups import FAMILIES, ChannelGroup, find_channel_groups
from kd_det.pruning.importance import channel_rms, fusion_parameters

CHECKPOINT_KEY = 'sparsity_hook'


def detector_of(model: torch.nn.Module) -> torch.nn.Module:
    """The trained detector inside a runner's model (unwrapped; the student of a distiller)."""
    if is_model_wrapper(model):
        model = model.module
    return getattr(model, 'student', model)


@HOOKS.register_module()
class SparsityHook(Hook):
    """Shrinks prunable channel groups and fusion edges toward exact zeros during training.

    The penalty is ``channel_weight * sum_groups group_lasso(rows)`` over the channel groups of
    :func:`kd_det.pruning.channel_groups.find_channel_groups` (a row is everything that
    makes one channel: BN scale and shift of every coupled norm layer, or a conv's filter and
    bias in a head without norm) plus ``fusion_weight * sum ReLU(w)`` over the SparseBiFPN
    fusion weights.

    It is applied as a **proximal step after each optimizer step**, not as a loss term or a
    subgradient added to ``.grad``: the step size is the parameter's current learning rate times
    the scheduled weight, exactly like a decoupled weight decay (AdamW). Two reasons: Adam
    divides a subgradient added to the gradient by its own running RMS, so the penalty weight
    loses its meaning and small scales oscillate around zero instead of reaching it; and the
    proximal step (group soft-thresholding) sets a channel to *exactly* zero, which the pruner
    then removes without changing the network's outputs. With Adam, a ``channel_weight`` of 1
    out-pulls any gradient (Adam's step is at most about ``lr`` per entry); 0.05-0.5 leaves the
    channels the loss needs alive.

    The weight follows a schedule: 0 for ``warmup`` iterations (or epochs with ``by_epoch``),
    then a linear ramp to full strength over ``ramp``. Logged every iteration through the
    message hub (``sparsity/<group>``: fraction of the group's channels whose RMS scale is at
    most ``threshold``; ``sparsity/fusion_edges``: fraction of fusion edges with zero weight;
    ``sparsity/penalty``; ``sparsity/weight_scale``). The hook's counters are saved in and
    restored from checkpoints, so a resumed run continues with the same state.

    Args:
        channel_weight (float | dict): group-lasso weight for channel groups, or one per
            family (``dict(neck=0.1, head=0.01, backbone=0.1)``; a missing family gets 0). Head
            groups without a norm layer are conv filters, whose RMS is ~0.05 where BN scales
            start at ~0.7, so they need a weight about ten times smaller. Defaults to 0.1.
        fusion_weight (float): L1 weight for fusion weights. Defaults to 0.1.
        families (Sequence[str]): channel group families to sparsify: ``'neck'``, ``'head'``,
            ``'backbone'``. Defaults to all.
        penalty (str): ``'group_lasso'`` (whole channels) or ``'l1'`` (each scale on its own,
            network slimming). Defaults to ``'group_lasso'``.
        warmup (int): iterations (epochs) without penalty. Defaults to 0.
        ramp (int): iterations (epochs) of linear ramp after the warm-up. Defaults to 0.
        by_epoch (bool): ``warmup``/``ramp`` are in epochs. Defaults to False.
        threshold (float): RMS scale at or below which a channel counts as sparse in the logs.
            Defaults to 1e-3.
    """
    priority = 'NORMAL'  # after the optimizer step, before CheckpointHook (VERY_LOW) saves

    def __init__(self, channel_weight: float = 0.1, fusion_weight: float = 0.1,
                 families: Sequence[str] = FAMILIES, penalty: str = 'group_lasso',
                 warmup: int = 0, ramp: int = 0, by_epoch: bool = False,
                 threshold: float = 1e-3):
        if penalty not in ('group_lasso', 'l1'):
            raise ValueError(f"penalty must be 'group_lasso' or 'l1', got {penalty!r}")
        if isinstance(channel_weight, (int, float)):
            channel_weight = {family: float(channel_weight) for family in families}
        unknown = set(channel_weight) - set(FAMILIES)
        if unknown:
            raise ValueError(f'channel_weight has unknown families {sorted(unknown)}')
        if min(channel_weight.values(), default=0) < 0 or fusion_weight < 0 or warmup < 0 \
                or ramp < 0:
            raise ValueError('weights, warmup and ramp must be non-negative')
        self.channel_weight = dict(channel_weight)
        self.fusion_weight = fusion_weight
        self.families = tuple(families)
        self.penalty = penalty
        self.warmup = warmup
        self.ramp = ramp
        self.by_epoch = by_epoch
        self.threshold = threshold
        self.groups: List[ChannelGroup] = []
        self.fusion_params: List[torch.nn.Parameter] = []
        self.state = dict(steps=0, total_scale=0.0)
        self._iters_per_unit = 1
        self._lr_of: Dict[int, dict] = {}  # id(parameter) -> its optimizer param group

    # ---- schedule and penalty -----------------------------------------------------------------
    def weight_scale(self, iteration: int) -> float:
        """Schedule factor in [0, 1] for the 0-based ``iteration`` just finished."""
        progress = iteration / self._iters_per_unit - self.warmup
        if progress < 0:
            return 0.0
        if self.ramp == 0:
            return 1.0
        return min(1.0, (progress + 1.0 / self._iters_per_unit) / self.ramp)

    def _rows(self, group: ChannelGroup) -> torch.Tensor:
        rows = torch.cat([p.detach().reshape(group.num_channels, -1) for p in group.scales], 1)
        return rows.reshape(-1, 1) if self.penalty == 'l1' else rows

    def _weight_of(self, group: ChannelGroup) -> float:
        return self.channel_weight.get(group.family, 0.0)

    def penalty_value(self) -> float:
        """Current (unscheduled) penalty ``channel_weight * group lasso + fusion_weight * L1``."""
        value = sum(self._weight_of(g) * float(group_lasso(self._rows(g))) for g in self.groups)
        value += sum(self.fusion_weight * float(torch.relu(p.detach()).sum())
                     for p in self.fusion_params)
        return value

    # ---- hook stages --------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        detector = detector_of(runner.model)
        self.groups = find_channel_groups(detector, self.families)
        self.fusion_params = fusion_parameters(detector)
        if self.by_epoch:
            self._iters_per_unit = len(runner.train_dataloader)
        self._lr_of = self._learning_rates(runner)
        named = [(g.name, p) for g in self.groups for p in g.scales]
        named += [('fusion weights', p) for p in self.fusion_params]
        for name, param in named:
            if id(param) not in self._lr_of:
                raise RuntimeError(f'sparsity group {name} has parameters the optimizer does '
                                   'not train (frozen?); drop its family from `families` or '
                                   'unfreeze it')
        print_log(f'SparsityHook: {len(self.groups)} channel groups '
                  f'({", ".join(f"{g.name}[{g.num_channels}]" for g in self.groups)}), '
                  f'{sum(p.numel() for p in self.fusion_params)} fusion weights',
                  logger='current')

    @staticmethod
    def _learning_rates(runner) -> Dict[int, dict]:
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]
        lr_of = {}
        for each in wrappers:
            for param_group in each.optimizer.param_groups:
                for param in param_group['params']:
                    lr_of[id(param)] = param_group
        return lr_of

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        scale = self.weight_scale(runner.iter)
        if scale > 0:
            self.apply_proximal_step(scale)
        self._log(runner, scale)

    @torch.no_grad()
    def apply_proximal_step(self, scale: float) -> None:
        """Shrink every group and fusion weight by ``lr * weight * scale`` (see class doc)."""
        for group in self.groups:
            step = self._lr_of[id(group.scales[0])]['lr'] * self._weight_of(group) * scale
            if step == 0:
                continue
            rows = group_lasso_prox(self._rows(group), step)
            rows = rows.reshape(group.num_channels, -1)
            start = 0
            for param in group.scales:
                width = param.numel() // group.num_channels
                param.copy_(rows[:, start:start + width].reshape(param.shape))
                start += width
        for param in self.fusion_params:
            fusion_step = self._lr_of[id(param)]['lr'] * self.fusion_weight * scale
            param.copy_(relu_l1_prox(param, fusion_step))
        self.state['steps'] += 1
        self.state['total_scale'] += scale

    def sparsity(self) -> Dict[str, float]:
        """Fraction of sparse channels per group (and of dead fusion edges)."""
        result = {g.name: float((channel_rms(g) <= self.threshold).float().mean())
                  for g in self.groups}
        if self.fusion_params:
            weights = torch.cat([p.detach().flatten() for p in self.fusion_params])
            result['fusion_edges'] = float((weights <= 0).float().mean())
        return result

    def _log(self, runner, scale: float) -> None:
        hub = runner.message_hub
        for name, value in self.sparsity().items():
            hub.update_scalar(f'train/sparsity/{name}', value)
        hub.update_scalar('train/sparsity/penalty', self.penalty_value())
        hub.update_scalar('train/sparsity/weight_scale', scale)

    # ---- checkpoints --------------------------------------------------------------------------
    def _settings(self) -> dict:
        return dict(channel_weight=dict(self.channel_weight), fusion_weight=self.fusion_weight,
                    families=list(self.families), penalty=self.penalty, warmup=self.warmup,
                    ramp=self.ramp, by_epoch=self.by_epoch)

    def state_dict(self) -> dict:
        return dict(state=dict(self.state), settings=self._settings())

    def load_state_dict(self, state_dict: dict) -> None:
        self.state = dict(state_dict['state'])
        if state_dict.get('settings') != self._settings():
            print_log(f'SparsityHook: resuming with settings {self._settings()} different from '
                      f"the checkpoint's {state_dict.get('settings')}", logger='current',
                      level=30)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self.load_state_dict(checkpoint[CHECKPOINT_KEY])
        else:
            print_log('SparsityHook: the checkpoint has no sparsity state (trained without the '
                      'hook?); starting its counters from zero', logger='current', level=30)


__all__ = ['SparsityHook', 'detector_of']
