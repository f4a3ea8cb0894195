"""Mixed precision that works on the machine at hand: fp16 on GPU, bf16 autocast on CPU.

mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator, so CPU training gets
:class:`BF16AutocastOptimWrapper`. bf16 keeps fp32's exponent range, so no loss scaling is
needed there.
"""
from contextlib import contextmanager

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """Optimizer wrapper that runs forward passes under CPU bf16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), \
                torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            yield


def enable_amp(cfg) -> None:
    """Switch ``cfg.optim_wrapper`` to the mixed-precision wrapper for this machine (in place)."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type in ('AmpOptimWrapper', 'BF16AutocastOptimWrapper'):
        print_log(f'AMP is already enabled by the config ({wrapper_type}).', logger='current')
        return
    if wrapper_type != 'OptimWrapper':
        raise ValueError(f'--amp only replaces `OptimWrapper`, but the config uses '
                         f'{wrapper_type!r}; set its mixed-precision options in the config.')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'BF16AutocastOptimWrapper'
