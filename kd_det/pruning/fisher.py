"""Fisher (squared first-order Taylor) importance of every channel of the prunable groups.

Zeroing channel ``c`` of a group sets the slices ``c`` of its ``scales`` (BN scale and shift,
or a conv's filter and bias) to zero. To first order that changes the loss by

    delta_c = - sum over the slices c of every scale p of  p * dL/dp,

computed here from the parameters' gradients in each backward pass. The importance of ``c`` is
the sum over iterations of ``delta_c ** 2``: the Fisher-information estimate of Molchanov et
al. (*Importance Estimation for Neural Network Pruning*, CVPR 2019) that mmrazor's GroupFisher
also uses, here per mini-batch. Because it is measured on the training loss, a distillation run
ranks channels by what the student needs for its task *and* for imitating the teacher.
"""
from typing import Dict, List, Sequence

import torch

from kd_det.pruning.channel_groups import ChannelGroup


class FisherImportance:
    """Accumulates per-channel Fisher importance from gradient hooks on the groups' scales.

    Call :meth:`attach` once, :meth:`end_iteration` after every optimizer step (it squares and
    adds the iteration's Taylor terms) and :meth:`reset` after pruning decisions.

    Args:
        groups: the channel groups to score.
    """

    def __init__(self, groups: Sequence[ChannelGroup]):
        self.groups = list(groups)
        self.importance: Dict[str, torch.Tensor] = {
            g.name: torch.zeros(g.num_channels, dtype=torch.float64) for g in self.groups}
        self._taylor: Dict[str, torch.Tensor] = {
            g.name: torch.zeros(g.num_channels, dtype=torch.float64) for g in self.groups}
        self.iterations = 0
        self._handles: List = []

    def attach(self) -> None:
        """Register the gradient hooks (idempotent)."""
        if self._handles:
            return
        for group in self.groups:
            for param in group.scales:
                self._handles.append(param.register_hook(self._on_grad(group, param)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _on_grad(self, group: ChannelGroup, param: torch.nn.Parameter):
        def hook(grad: torch.Tensor) -> None:
            term = (param.detach() * grad.detach()).reshape(group.num_channels, -1).sum(1)
            self._taylor[group.name] += term.double().cpu()
        return hook

    def end_iteration(self) -> None:
        """Add this iteration's squared Taylor terms to the importance."""
        for name, taylor in self._taylor.items():
            self.importance[name] += taylor.pow(2)
            taylor.zero_()
        self.iterations += 1

    def reset(self) -> None:
        for tensor in self.importance.values():
            tensor.zero_()
        self.iterations = 0


__all__ = ['FisherImportance']
