"""Pruning, one feature: sparsity training (:class:`SparsityHook`, :mod:`.sparsity_hook`), how
much each channel still matters (:mod:`.importance`), pruning a checkpoint into a smaller plain
config + checkpoint (:mod:`.prune`), the benchmark's prune + fine-tune chain
(:mod:`.prune_chain`) and the scale histograms (:mod:`.sparsity_report`).

The channel groups and the group-lasso math it works on are model code:
:mod:`kd_det.models.utils.channel_groups` and :mod:`kd_det.models.losses.group_lasso`.
"""
from kd_det.pruning.importance import channel_rms, fusion_parameters
from kd_det.pruning.sparsity_hook import SparsityHook

__all__ = ['SparsityHook', 'channel_rms', 'fusion_parameters']
