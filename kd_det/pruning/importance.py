"""How much a prunable channel or fusion edge still matters: what the sparsity hook logs, the
pruner ranks by and the sparsity report plots."""
import math
from typing import List

import torch

from kd_det.pruning.channel_groups import ChannelGroup, fusion_edges


def channel_rms(group: ChannelGroup) -> torch.Tensor:
    """(C, ) root-mean-square of each channel's scales: |gamma| for a single BN."""
    rows = sum(p.numel() // group.num_channels for p in group.scales)
    return group.channel_norms() / math.sqrt(rows)


def fusion_parameters(detector: torch.nn.Module) -> List[torch.nn.Parameter]:
    """The fusion weight vector of every SparseBiFPN node, once each."""
    nodes = {id(node): node for node, _ in fusion_edges(detector).values()}
    return [node.fusion_weight for node in nodes.values()]
