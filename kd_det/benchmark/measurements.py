"""What the benchmark measures besides accuracy: deployment cost and training step time.

Both are measured side by side (every model in one sitting, interleaved), so load from other
work on a shared machine hits all methods alike and the ratios between them hold.
"""
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student
from kd_det.deploy.latency import compare_deployment


def measure_deployment(students: Dict[str, Tuple[str, Optional[str], Dict]], onnx_dir: str,
                       input_shape: Sequence[int] = (3, 160, 160),
                       repeats: int = 50) -> Dict[str, dict]:
    """Params, FLOPs, batch-1 PyTorch and onnxruntime latency (interleaved, one thread) and ONNX
    parity of each student.

    Args:
        students: ``{name: (config, checkpoint or None, cfg_options)}``; each is built with
            :func:`kd_det.apis.student.build_student` and exported to ``onnx_dir``.

    Returns:
        ``{name: dict(params, flops, latency_torch_ms, latency_ort_ms, onnx_max_abs_diff)}``
        (see :func:`kd_det.deploy.latency.compare_deployment`).
    """
    models = {name: build_student(config, checkpoint, options)
              for name, (config, checkpoint, options) in students.items()}
    return compare_deployment(models, onnx_dir, input_shape, repeats)


def measure_untrained(bench, latency_repeats: int = 100) -> Dict[str, dict]:
    """Params, FLOPs and PyTorch/ORT latency of every method of a :class:`Benchmark` at random
    weights (no training): architecture cost only, measured side by side."""
    students = {m.name: (m.config, None, bench._merged_options(m)) for m in bench.methods}
    return measure_deployment(students, osp.join(bench.work_root, 'untrained_onnx'),
                              bench.input_shape, latency_repeats)


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
    # the loop's iteration, as a runner records it: some algorithms read it in their
    # train_step (mmrazor's GroupFisher prunes every `interval` iterations)
    hub = MessageHub.get_current_instance()
    for step in range(warmup + repeats):
        hub.update_info('iter', step)
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
