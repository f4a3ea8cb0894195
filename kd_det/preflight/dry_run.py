"""Pre-flight check ``shapes``: a dry run of the built distillation model on a dummy batch,
so every distill loss is shown to get features it can compare."""
import logging
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from kd_det.preflight.errors import DistillShapeError, _first_line, _origin


def _shape(value) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_shape(v) for v in value) + ']'
    return type(value).__name__


def _channels(value) -> Optional[int]:
    return value.shape[1] if isinstance(value, torch.Tensor) and value.dim() >= 2 else None


def _record_name(record: dict) -> str:
    role = 'student' if record.get('from_student') else 'teacher'
    level = f'[{record["data_idx"]}]' if record.get('data_idx') is not None else ''
    return f'{role} recorder {record.get("recorder")!r}{level}'


def _first_conv(module: nn.Module) -> Optional[nn.Module]:
    return next((m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)


def _checked_configurable_losses(distiller) -> Dict[str, torch.Tensor]:
    """mmrazor ``ConfigurableDistiller.compute_distill_losses``, one loss at a time, with the
    loss name, the level and the shapes in the error."""
    losses = {}
    for loss_name, mappings in distiller.loss_forward_mappings.items():
        kwargs, described = {}, []
        for key, record in mappings.items():
            raw_args = {k: v for k, v in record.items() if k not in ('connector',
                                                                      'connector_idx')}
            value = distiller.get_record(**raw_args)
            connector = record.get('connector')
            if connector:
                module = distiller.connectors[connector]
                try:
                    value = module(value)
                except Exception as err:
                    layer = _first_conv(module)
                    expects = getattr(layer, 'in_channels', getattr(layer, 'in_features', None))
                    fix = (f'set in_channel={_channels(value)} in '
                           f'model.distiller.connectors[{connector!r}]' if expects is not None
                           else f'fix model.distiller.connectors[{connector!r}]')
                    raise DistillShapeError(
                        f'distill loss {loss_name!r}, argument {key!r}: connector {connector!r} '
                        f'expects {expects} input channels but the {_record_name(record)} has '
                        f'shape {_shape(value)}: {fix} ({_first_line(err)})') from None
            if record.get('connector_idx') is not None:
                value = value[record['connector_idx']]
            via = f' via connector {connector!r}' if connector else ''
            described.append(f'{key}={_shape(value)} from the {_record_name(record)}{via}')
            kwargs[key] = value
        try:
            losses[loss_name] = distiller.distill_losses[loss_name](**kwargs)
        except Exception as err:
            tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
            fix = 'make the shapes match'
            channels = {_channels(t) for t in tensors}
            if len(channels) > 1:
                student = [k for k, r in mappings.items() if r.get('from_student')]
                teacher = [k for k, r in mappings.items() if not r.get('from_student')]
                if student and teacher and _channels(kwargs[student[0]]) is not None:
                    fix = (f'add a connector mapping {_channels(kwargs[student[0]])} -> '
                           f'{_channels(kwargs[teacher[0]])} channels to {student[0]!r} (e.g. '
                           f"dict(type='ConvModuleConnector', "
                           f'in_channel={_channels(kwargs[student[0]])}, '
                           f'out_channel={_channels(kwargs[teacher[0]])}, act_cfg=None)) or fix '
                           "the connector's out_channel")
            raise DistillShapeError(
                f'distill loss {loss_name!r} ({type(distiller.distill_losses[loss_name]).__name__})'
                f' cannot compare {"; ".join(described)}: {fix} ({_first_line(err)})') from None
    return losses


def dummy_detection_batch(batch_size: int = 2, height: int = 160, width: int = 192,
                          channels: int = 3, device='cpu'):
    """Normalised images (N, C, H, W) and DetDataSamples with one GT box each, on ``device``
    (drawn on the CPU, so a GPU's random generator is not touched)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    inputs = torch.randn(batch_size, channels, height, width).to(device)
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
            batch_input_shape=(height, width), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[width * 0.2, height * 0.2, width * 0.6, height * 0.7]],
                                device=device),
            labels=torch.zeros(1, dtype=torch.long, device=device))
        samples.append(sample)
    return inputs, samples


def check_distill_shapes(model: nn.Module) -> None:
    """Dry-run a distillation model on a dummy batch: every distill loss gets features it can
    compare. Raises :class:`DistillShapeError` naming the loss, the level and the shapes.

    Runs in eval mode without gradients and leaves the weights, BatchNorm statistics and the
    random generators as they were. Errors outside the distillation losses (an unusual
    detector that the dummy batch does not suit) are only logged: training would show them.
    """
    from mmengine.model import is_model_wrapper
    from mmrazor.models.distillers import ConfigurableDistiller
    algorithm = model.module if is_model_wrapper(model) else model
    distiller = getattr(algorithm, 'distiller', None)
    if distiller is None or not hasattr(algorithm, 'student') or not hasattr(algorithm, 'loss'):
        return
    generic = type(distiller).compute_distill_losses is \
        ConfigurableDistiller.compute_distill_losses
    original = distiller.compute_distill_losses

    def checked():
        if generic:
            return _checked_configurable_losses(distiller)
        try:
            return original()
        except Exception as err:
            raise DistillShapeError(
                f'{type(distiller).__name__} cannot compute its losses on a dummy batch: '
                f'{type(err).__name__}: {_first_line(err)} (raised in {_origin(err)}; the '
                'traceback above shows the whole chain)') from err

    mean = getattr(getattr(algorithm, 'data_preprocessor', None), 'mean', None)
    channels = int(mean.numel()) if isinstance(mean, torch.Tensor) and mean.numel() > 1 else 3
    was_training = algorithm.training
    python_state, numpy_state = random.getstate(), np.random.get_state()
    distiller.compute_distill_losses = checked
    algorithm.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            # on the model's device: a GPU model given CPU tensors failed on every --amp run
            device = next(algorithm.parameters()).device
            algorithm.loss(*dummy_detection_batch(channels=channels, device=device))
    except DistillShapeError:
        raise
    except Exception as err:
        print_log(f'the distillation dry run on a dummy batch did not complete '
                  f'({type(err).__name__}: {_first_line(err)}); feature shapes are checked at '
                  'the first training step instead', logger='current', level=logging.WARNING)
    finally:
        del distiller.compute_distill_losses
        algorithm.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
