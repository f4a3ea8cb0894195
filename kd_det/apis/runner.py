"""Build mmengine Runners from kd_det/mmdet configs the way mmdet's own tools do.

``tools/train.py`` and ``tools/test.py`` only parse arguments and call into this module, so the
benchmark, the demo and the tests drive training through exactly the same code path.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import kd_det  # noqa: F401  (applies compat shims and registers every kd_det module)
from kd_det import preflight
from kd_det.engine.amp import enable_amp
from kd_det.preflight.checkpoint_fit import (check_checkpoint_fits_model,
                                             explain_optimizer_mismatch)


def load_config(config: str, work_dir: Optional[str] = None,
                cfg_options: Optional[dict] = None, launcher: str = 'none') -> Config:
    """Read ``config``, apply ``--cfg-options`` and pick the work dir like mmdet does."""
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        # DDP of a CPU module takes no device ids (mmengine passes the local rank by default)
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper.setdefault('device_ids', None)
        cfg.model_wrapper_cfg = wrapper
    return cfg


def build_train_runner(config: str, work_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None, resume: Optional[str] = None,
                       amp: bool = False, auto_scale_lr: bool = False,
                       launcher: str = 'none') -> Runner:
    """Runner for training.

    Args:
        resume: ``'auto'`` resumes from the latest checkpoint in the work dir, a path resumes
            from that checkpoint, ``None`` starts fresh.
        amp: mixed precision: fp16 with dynamic loss scaling on GPU, bf16 autocast on CPU.
    """
    cfg = load_config(config, work_dir, cfg_options, launcher)
    if amp:
        enable_amp(cfg)
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(enable=..., '
                               'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    preflight.resolve_resume_checkpoint(cfg)
    preflight.check_config(cfg, mode='train')
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    preflight.check_built_model(cfg, runner.model)
    check_checkpoint_fits_model(cfg, runner.model, mode='train')
    explain_optimizer_mismatch(runner)
    return runner


def build_test_runner(config: str, checkpoint: str, work_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None, out: Optional[str] = None,
                      launcher: str = 'none') -> Runner:
    """Runner for evaluating ``checkpoint`` on the config's test split."""
    cfg = load_config(config, work_dir, cfg_options, launcher)
    cfg.load_from = checkpoint
    dump_predictions(cfg, out)
    preflight.check_config(cfg, mode='test')
    runner = Runner.from_cfg(cfg)
    check_checkpoint_fits_model(cfg, runner.model, mode='test')
    return runner


def dump_predictions(cfg: Config, out: Optional[str]) -> None:
    """``--out``: also dump the test predictions to this ``.pkl`` (mmdet's DumpDetResults)."""
    if out is None:
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out!r}')
    cfg.test_evaluator = _as_list(cfg.test_evaluator) + [
        dict(type='DumpDetResults', out_file_path=out)]


def build_distill_algorithm(config: str, checkpoint: Optional[str] = None,
                            teacher_ckpt: Optional[str] = None,
                            cfg_options: Optional[dict] = None):
    """A distillation algorithm from its config, for inspection tools (no Runner, no data).

    The teacher loads ``teacher_ckpt`` (default: the config's ``model.teacher_ckpt``); a
    distillation ``checkpoint`` then loads strictly into the whole algorithm. Returns
    ``(cfg, algorithm)``.
    """
    from mmengine.registry import init_default_scope
    from mmrazor.registry import MODELS

    from kd_det.utils.checkpoint import load_state_dict_strict
    cfg = load_config(config, cfg_options=cfg_options)
    if teacher_ckpt:
        cfg.model.teacher_ckpt = teacher_ckpt
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    algorithm = MODELS.build(cfg.model)
    if checkpoint:
        load_state_dict_strict(algorithm, checkpoint, role='distillation')
    return cfg, algorithm


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def set_local_rank(local_rank: int) -> None:
    """torch.distributed.launch passes --local-rank; mmengine reads LOCAL_RANK."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


__all__: Sequence[str] = ('load_config', 'build_train_runner', 'build_test_runner',
                          'set_local_rank')
