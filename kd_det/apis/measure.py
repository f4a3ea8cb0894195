"""Measurements the benchmark reports besides accuracy: deployment cost and training step time."""
import statistics
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from kd_det.apis.complexity import (onnxruntime_latency_ms, params_and_flops,
                                    torch_latency_ms)
from kd_det.apis.export import export_onnx, onnx_parity
from kd_det.apis.runner import load_config
from kd_det.apis.student import student_config, student_state_dict
from kd_det.utils.checkpoint import load_checkpoint_file, state_dict_of


def build_student(config: str, checkpoint: Optional[str] = None,
                  cfg_options: Optional[Dict] = None) -> torch.nn.Module:
    """The (student) detector of ``config``, with ``checkpoint``'s weights if given."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = student_config(load_config(config, cfg_options=_without_teacher(cfg_options)))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    if checkpoint:
        state = student_state_dict(state_dict_of(load_checkpoint_file(checkpoint, 'cpu')))
        model.load_state_dict(state, strict=True)
    return model.eval()


def _without_teacher(cfg_options: Optional[Dict]) -> Dict:
    return {k: v for k, v in (cfg_options or {}).items() if not k.startswith('model.teacher')}


def measure_deployment(config: str, checkpoint: Optional[str], onnx_path: str,
                       input_shape: Sequence[int] = (3, 192, 192), repeats: int = 50,
                       cfg_options: Optional[Dict] = None) -> Dict:
    """Params, FLOPs, batch-1 latency in PyTorch and onnxruntime, and ONNX parity."""
    model = build_student(config, checkpoint, cfg_options)
    result = params_and_flops(model, input_shape)
    export_onnx(model, onnx_path, input_shape)
    parity = onnx_parity(model, onnx_path, input_shape)
    result['onnx_max_abs_diff'] = parity['max_abs_diff']
    # one thread each, so the two runtimes are compared on equal terms on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result['latency_torch_ms'] = torch_latency_ms(model, input_shape, repeats=repeats)
        result['latency_ort_ms'] = onnxruntime_latency_ms(onnx_path, input_shape,
                                                          repeats=repeats, threads=1)
    finally:
        torch.set_num_threads(threads)
    return result


def _training_setup(config: str, cfg_options: Dict):
    """Build a model, its optimizer wrapper and one preprocessed training batch."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(config, cfg_options=cfg_options)
    if 'teacher_ckpt' in cfg.model:
        cfg.model.teacher_ckpt = None  # timing does not depend on the teacher's weights
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader_cfg = Config(cfg.train_dataloader.to_dict())
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch = next(iter(loader))
    return model, optim_wrapper, batch


def measure_step_times(methods: List[Tuple[str, str, Dict]],
                       teacher_config: Tuple[str, Dict], repeats: int = 12,
                       warmup: int = 2) -> Dict[str, Dict[str, float]]:
    """Median training-step time of each method on one fixed batch, measured interleaved.

    Steps of all methods alternate in one process, so machine load hits them alike and the
    ratios are meaningful on a shared machine. The first method is the student-only baseline.
    The teacher's forward (backbone + neck + head, no grad) is timed too.

    Returns:
        ``{name: dict(step_ms, ratio_vs_student, ratio_vs_student_plus_teacher)}``.
    """
    setups = {name: _training_setup(config, options) for name, config, options in methods}
    teacher_model, _, teacher_batch = _training_setup(*teacher_config)
    times: Dict[str, List[float]] = {name: [] for name in setups}
    times['__teacher_forward'] = []
    for step in range(warmup + repeats):
        for name, (model, optim_wrapper, batch) in setups.items():
            start = time.perf_counter()
            model.train_step(batch, optim_wrapper)
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            data = teacher_model.data_preprocessor(teacher_batch, True)
            teacher_model._forward(data['inputs'])
        if step >= warmup:
            times['__teacher_forward'].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) * 1000.0 for name, values in times.items()}
    student_ms = medians[methods[0][0]]
    teacher_ms = medians.pop('__teacher_forward')
    return {name: dict(step_ms=ms, teacher_forward_ms=teacher_ms,
                       ratio_vs_student=ms / student_ms,
                       ratio_vs_student_plus_teacher=ms / (student_ms + teacher_ms))
            for name, ms in medians.items()}
