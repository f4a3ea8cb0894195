"""Pruning, one feature: progressive Fisher pruning during training (:class:`FisherPruningHook`,
:mod:`.fisher_pruning_hook`, with :mod:`.fisher` and :mod:`.conv_cost`), sparsity training
(:class:`SparsityHook`, :mod:`.sparsity_hook`), mmrazor's GroupFisher as the anchor with the
export of its pruned detector (:mod:`.group_fisher`, :mod:`.group_fisher_export`), how
much each channel still matters (:mod:`.importance`), pruning a checkpoint into a smaller plain
config + checkpoint (:mod:`.prune`), the benchmark's prune + fine-tune chain
(:mod:`.prune_chain`) and the scale histograms (:mod:`.sparsity_report`), on the channel
groups of :mod:`.channel_groups` (what is removed together) and the group-lasso math of
:mod:`.group_lasso`.
"""
from kd_det.pruning.fisher_pruning_hook import FisherPruningHook
from kd_det.pruning.group_fisher import FlopsTargetGroupFisherMutator
from kd_det.pruning.group_fisher_export import GroupFisherExportHook
from kd_det.pruning.importance import channel_rms, fusion_parameters
from kd_det.pruning.sparsity_hook import SparsityHook

__all__ = ['FisherPruningHook', 'FlopsTargetGroupFisherMutator', 'GroupFisherExportHook',
           'SparsityHook', 'channel_rms', 'fusion_parameters']
