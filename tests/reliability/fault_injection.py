"""Test-only hooks that inject faults into a real training run (importable by child configs)."""
import os
import signal

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class InjectLossHook(Hook):
    """Replaces loss ``loss_name`` by ``value`` (NaN by default) at 0-based ``iterations``."""

    def __init__(self, loss_name: str, iterations=(2, ), value: float = float('nan')):
        self.loss_name, self.iterations, self.value = loss_name, tuple(iterations), value

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loss = model.loss

        def faulty_loss(*args, **kwargs):
            losses = loss(*args, **kwargs)
            if runner.iter in self.iterations:
                assert self.loss_name in losses, sorted(losses)
                value = losses[self.loss_name]
                losses[self.loss_name] = [v * 0 + self.value for v in value] if isinstance(
                    value, (list, tuple)) else value * 0 + self.value
            return losses

        model.loss = faulty_loss


@HOOKS.register_module()
class InjectGradientHook(Hook):
    """Sets the gradient of every parameter whose name contains ``param_name`` to ``value``
    (NaN by default) after backward at 0-based ``iterations``; every loss stays finite."""

    def __init__(self, param_name: str = '', iterations=(2, ), value: float = float('nan')):
        self.param_name, self.iterations, self.value = param_name, tuple(iterations), value

    def before_train(self, runner) -> None:
        optim_wrapper = runner.optim_wrapper
        backward = optim_wrapper.backward

        def faulty_backward(loss, **kwargs):
            backward(loss, **kwargs)
            if runner.iter in self.iterations:
                for name, param in runner.model.named_parameters():
                    if param.grad is not None and self.param_name in name:
                        param.grad.fill_(self.value)

        optim_wrapper.backward = faulty_backward


@HOOKS.register_module()
class KillAtIterationHook(Hook):
    """SIGKILLs its own process before 0-based iteration ``iteration`` (no cleanup at all)."""
    priority = 'HIGHEST'

    def __init__(self, iteration: int):
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class CountOptimizerStepsHook(Hook):
    """Counts real optimizer steps in ``runner.message_hub`` info ``test/optimizer_steps``."""

    def before_train(self, runner) -> None:
        optimizer = runner.optim_wrapper.optimizer
        step = optimizer.step

        def counted_step(*args, **kwargs):
            hub = runner.message_hub
            hub.update_info('test/optimizer_steps', (hub.get_info('test/optimizer_steps') or 0)
                            + 1)
            return step(*args, **kwargs)

        optimizer.step = counted_step


def all_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.state_dict().values()
               if torch.is_floating_point(p))
