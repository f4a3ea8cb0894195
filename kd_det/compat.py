"""The one place that adapts mmrazor 1.0 and mmengine 0.10 to today's torch (2.13).

Applied once by ``import kd_det``:

1. **mmrazor imports.** ``mmrazor.structures.quantization`` builds tables from ``torch.ao``
   names that torch removed, so ``import mmrazor.models`` raised
   ``ImportError: `torch>=1.13` is not installed properly``. A stand-in module is installed
   before mmrazor is imported: distillation and pruning import and work; building any mmrazor
   quantization model raises :class:`QuantizationUnavailableError` saying why.
2. **Safe checkpoint loading.** torch loads with ``weights_only=True`` by default, which refuses
   the message-hub objects and numpy arrays inside mmengine's ``epoch_N.pth``. The few plain data
   classes they consist of are allow-listed, numpy's constructors under numpy 1 and numpy 2
   names, and ``builtins.getattr`` only as :func:`history_buffer_statistic` (the statistics
   methods stock mmengine pickles into every message-hub buffer; nothing else). kd_det itself
   writes buffers without those callables. mmengine's loaders for local files and for
   ``http(s)://`` URLs are replaced by :func:`kd_det.utils.checkpoint.load_checkpoint_file`, so
   ``load_from``, ``--resume`` and ``teacher_ckpt`` keep the protection and a checkpoint with
   pickled code is refused with a clear error.
3. **``kd_det::`` config paths**, like ``mmdet::``, for ``_base_`` and ``cfg_path``.
4. **Distributed training without GPUs**: ``--launcher pytorch`` uses gloo on CPU-only torch.
"""
import importlib
import sys
import types

import numpy as np
import torch

QUANTIZATION_MODULE = 'mmrazor.structures.quantization'
QUANTIZATION_PACKAGES = ('mmrazor.models.algorithms.quantization', 'mmrazor.models.quantizers',
                         'mmrazor.models.fake_quants', 'mmrazor.models.observers')


class QuantizationUnavailableError(ImportError):
    """mmrazor 1.0's quantization needs torch.ao APIs that torch 2.x removed."""


def _quantization_message(name: str) -> str:
    return (f'mmrazor quantization ({name}) is not available: mmrazor 1.0.0 needs '
            f'torch.ao.quantization APIs that torch {torch.__version__} no longer has. kd_det '
            'supports mmrazor distillation and pruning; for quantization export the model to '
            'ONNX (tools/export_onnx.py) and quantize it there.')


def _unavailable_class(name: str) -> type:
    def fail(*args, **kwargs):
        raise QuantizationUnavailableError(_quantization_message(name))

    class UnavailableMeta(type):

        def __getattr__(cls, attr):
            if attr.startswith('__'):
                raise AttributeError(attr)
            fail()

    return UnavailableMeta(name, (), {'__init__': fail, '__doc__': _quantization_message(name)})


def _install_quantization_stand_in() -> None:
    if QUANTIZATION_MODULE in sys.modules:
        return
    stand_in = types.ModuleType(QUANTIZATION_MODULE, 'kd_det stand-in: see kd_det.compat')
    stand_in.__all__ = []
    stand_in.__path__ = []

    def module_getattr(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _unavailable_class(name)

    stand_in.__getattr__ = module_getattr
    sys.modules[QUANTIZATION_MODULE] = stand_in


def _disable_quantization_models() -> None:
    """Make every registered mmrazor quantization model fail with the clear message."""
    from mmrazor.registry import MODELS
    for name, cls in list(MODELS.module_dict.items()):
        if cls.__module__.startswith(QUANTIZATION_PACKAGES):

            def fail(self, *args, __name=name, **kwargs):
                raise QuantizationUnavailableError(_quantization_message(__name))

            cls.__init__ = fail


def history_buffer_statistic(owner, name: str):
    """The only ``getattr`` a checkpoint may call: a statistics method of ``HistoryBuffer``.

    mmengine's Runner pickles each message-hub buffer's ``statistics_methods`` (``min``,
    ``max``, ``current``, ``mean`` and any registered one) as ``getattr(HistoryBuffer, name)``,
    so every checkpoint written without kd_det references ``builtins.getattr``. Allowing
    ``getattr`` itself would let a pickle reach any attribute of an allowed object; this stand-in
    resolves public plain functions of ``HistoryBuffer`` and refuses everything else.

    Raises:
        pickle.UnpicklingError: for any other object or name.
    """
    import pickle
    from mmengine.logging import HistoryBuffer
    method = HistoryBuffer.__dict__.get(name) if owner is HistoryBuffer else None
    if not isinstance(name, str) or name.startswith('_') or not isinstance(
            method, types.FunctionType):
        owner_name = getattr(owner, '__qualname__', type(owner).__name__)
        raise pickle.UnpicklingError(
            f'Unsupported GLOBAL getattr({owner_name}.{name}) (only the statistics methods of '
            'mmengine\'s HistoryBuffer may be looked up)')
    return method


def _numpy_globals() -> list:
    """numpy's array and scalar constructors under the module names of numpy 1 and numpy 2.

    numpy 2 pickles them as ``numpy._core.multiarray.*``, numpy 1 as ``numpy.core.multiarray.*``;
    a checkpoint written under either loads under both.
    """
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')
    except ImportError:  # numpy < 1.26
        multiarray = importlib.import_module('numpy.core.multiarray')
    return [(getattr(multiarray, fn), f'{package}.multiarray.{fn}')
            for fn in ('_reconstruct', 'scalar') for package in ('numpy.core', 'numpy._core')]


def _safe_checkpoint_globals() -> list:
    """Plain data classes found in mmengine checkpoints (message hub, numpy scalars/arrays)."""
    from mmengine.logging import HistoryBuffer
    from mmengine.config.config import ConfigDict
    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype,
            (history_buffer_statistic, 'builtins.getattr')] + _numpy_globals()
    # numpy >= 1.25 pickles dtypes by their class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return safe


def _history_buffer_getstate(self) -> dict:
    """Pickle a HistoryBuffer as plain data.

    mmengine pickles ``HistoryBuffer.min``/``max``/... into every buffer, i.e. the callable
    ``getattr(HistoryBuffer, 'min')``, which ``weights_only`` loading rightly refuses. The
    methods are class-level and re-registered on load by mmengine's own ``__setstate__``.
    """
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _install_safe_checkpoint_loading() -> None:
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader

    from kd_det.utils.checkpoint import load_checkpoint_file
    torch.serialization.add_safe_globals(_safe_checkpoint_globals())
    HistoryBuffer.__getstate__ = _history_buffer_getstate

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def load_from_local(filename, map_location):  # noqa: F811
        return load_checkpoint_file(filename, map_location)

    # mmengine's own http loader calls torch.load on the download without the checks above
    @CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
    def load_from_url(filename, map_location, model_dir=None, progress=True):  # noqa: F811
        return load_checkpoint_file(filename, map_location)


def _register_config_package() -> None:
    """Let configs say ``kd_det::embedded/x.py`` like ``mmdet::...`` (mmengine's package map)."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('kd_det', 'kd_det')


def _install_cpu_distributed() -> None:
    """``--launcher pytorch`` on a machine without GPUs: gloo, and no ``cuda.set_device``.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally, which fails on
    a CPU-only torch, and defaults to nccl, which needs GPUs.
    """
    if torch.cuda.is_available():
        return
    import mmengine.dist.utils as dist_utils
    from mmengine.logging import print_log
    original = dist_utils._init_dist_pytorch

    def init_dist_pytorch_cpu(backend='nccl', init_backend='torch', **kwargs):
        if init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            print_log('no GPU: using the gloo backend instead of nccl', logger='current')
            backend = 'gloo'
        torch.distributed.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch_cpu


def apply() -> None:
    """Apply every shim (idempotent)."""
    _register_config_package()
    _install_quantization_stand_in()
    import mmrazor.models  # noqa: F401  (registers mmrazor's models with the stand-in in place)
    _disable_quantization_models()
    _install_safe_checkpoint_loading()
    _install_cpu_distributed()


apply()
