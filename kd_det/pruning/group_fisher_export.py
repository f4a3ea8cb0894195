"""What a GroupFisher run leaves: the pruned detector as files, its cost against the unpruned
student, and its COCO metrics.

:class:`GroupFisherExportHook` writes ``<work_dir>/pruned/`` at the end of training, as
:class:`kd_det.pruning.FisherPruningHook` does: ``pruned.py`` (mmrazor's
``GroupFisherDeploySubModel``, see :func:`deploy_sub_model_config`), ``pruned.pth`` and
``prune_report.json``. ``tools/group_fisher_report.py CONFIG CHECKPOINT`` prints the FLOPs,
params and mAP of the pruned detector of any checkpoint of a run (:func:`main`).
"""
import argparse
import copy
import json
import logging
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch import nn

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.deploy.complexity import params_and_flops
from kd_det.pruning.group_fisher import (build_group_fisher_algorithm, build_pruned_detector,
                                         compact_architecture, pruning_structure)

# hooks that need the algorithm's mutator, or export it: not in the pruned detector's config
GROUP_FISHER_HOOKS = ('PruningStructureHook', 'ResourceInfoHook', 'GroupFisherExportHook')
# largest output change allowed between the pruned detector and its rebuild from the files
OUTPUT_TOLERANCE = 1e-4


def complexity_vs_student(detector: nn.Module, config: str,
                          input_shape: Sequence[int] = (3, 160, 160)) -> Dict:
    """Params and FLOPs (:func:`kd_det.deploy.complexity.params_and_flops`, mmengine's
    FlopAnalyzer, NMS excluded) of ``detector`` and of ``config``'s unpruned student.

    For the GroupFisher config that student is the architecture before pruning: the embedded
    student's FLOPs exactly, its params without the dead ``backbone.conv2`` (207k of 1.15M,
    which mmdet's MobileNetV2 computes and discards; see the config).

    Returns:
        ``dict(pruned=..., student=..., flops_fraction=float, params_fraction=float)``, each of
        the first two a ``params_and_flops`` dict.
    """
    student = build_student(config)
    pruned = params_and_flops(detector, input_shape)
    unpruned = params_and_flops(student, input_shape)
    return dict(pruned=pruned, student=unpruned,
                flops_fraction=pruned['flops'] / unpruned['flops'],
                params_fraction=pruned['params'] / unpruned['params'])


def evaluate_detector(detector: nn.Module, config: str, work_dir: str,
                      cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """COCO metrics (``coco/bbox_mAP``, ...) of ``detector`` on ``config``'s test split, with
    the config's test dataloader and evaluator (mmengine's test loop)."""
    from mmengine.runner import Runner
    cfg = student_config(load_config(config, work_dir, cfg_options))
    runner = Runner(model=detector, work_dir=work_dir, test_dataloader=cfg.test_dataloader,
                    test_evaluator=cfg.test_evaluator, test_cfg=cfg.test_cfg,
                    default_scope=cfg.get('default_scope', 'mmdet'),
                    env_cfg=cfg.get('env_cfg', dict()), log_level='WARNING',
                    experiment_name=cfg.get('experiment_name', None))
    return runner.test()


def deploy_sub_model_config(cfg: Config, structure: Dict[str, Tuple[int, int]]) -> Config:
    """``cfg`` (a GroupFisher config) as the plain config of its pruned detector.

    ``model`` becomes mmrazor's ``GroupFisherDeploySubModel``: the architecture (without its
    ``init_cfg``: the pruned weights come from ``load_from``), traced by the config's own
    ``parse_cfg`` so its units are named as in training, and ``fix_subnet`` = the kept channels
    of every pruned unit. mmrazor keeps the *first* that many channels of each unit; the
    checkpoint to load is therefore the compacted detector's (:func:`compact_architecture`:
    exactly the kept channels, in order), not the masked algorithm's. The counts are ints, not
    mmrazor's usual ratios: a ratio is floored (``int(100 * 0.29) == 28``) and could lose a
    channel. The GroupFisher hooks and DDP wrapper go (they need the algorithm); data,
    evaluator, schedule and the other hooks stay, so ``tools/test.py`` and ``tools/train.py``
    take the result as it is.
    """
    cfg = copy.deepcopy(cfg)
    cfg.pop('architecture', None)  # the config's own variable, with the unpruned init_cfg
    architecture = cfg.model.architecture
    architecture.pop('init_cfg', None)
    cfg.model = dict(
        type='mmrazor.GroupFisherDeploySubModel', architecture=architecture,
        fix_subnet={name: kept for name, (kept, total) in structure.items() if kept < total},
        parse_cfg=dict(cfg.model.mutator.parse_cfg, _scope_='mmrazor'))
    cfg.pop('model_wrapper_cfg', None)
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', [])
                        if hook.get('type', '').split('.')[-1] not in GROUP_FISHER_HOOKS]
    return cfg


def export_pruned(config: str, state_dict: Dict[str, torch.Tensor], out_dir: str,
                  source_checkpoint: Optional[str] = None) -> Dict:
    """Write the pruned detector of a GroupFisher run into ``out_dir``: ``pruned.py``
    (:func:`deploy_sub_model_config`, ``load_from`` = the checkpoint), ``pruned.pth`` (the
    compacted detector's weights) and ``prune_report.json``; the same three files as
    :func:`kd_det.pruning.prune.prune_checkpoint`.

    Args:
        config: the run's GroupFisher config.
        state_dict: the algorithm's (``architecture.*`` weights, ``mutator.*`` channel masks).
        source_checkpoint: recorded in the report (the checkpoint ``state_dict`` came from).

    Returns:
        The report: ``channels`` ``{unit: [kept, total]}`` of every unit, params and FLOPs of
        the unpruned student (``*_before``) and the pruned detector (``*_after``) at the
        mutator's ``input_shape``, ``max_output_change`` (masked algorithm vs compacted
        detector) and ``rebuilt_max_output_change`` (compacted detector vs ``pruned.py`` +
        ``pruned.pth`` rebuilt by :func:`kd_det.apis.student.build_student`).

    Raises:
        RuntimeError: the rebuilt detector's outputs differ from the compacted one's by more
            than ``OUTPUT_TOLERANCE`` (the files are left for inspection).
    """
    from kd_det.pruning.prune import max_output_change
    algorithm = build_group_fisher_algorithm(config)
    algorithm.load_state_dict(state_dict, strict=True)
    structure = pruning_structure(algorithm)
    input_shape = tuple(algorithm.mutator.input_shape[1:])
    masked = copy.deepcopy(algorithm.architecture).eval()
    detector = compact_architecture(algorithm)
    complexity = complexity_vs_student(detector, config, input_shape)

    os.makedirs(out_dir, exist_ok=True)
    out_cfg, out_ckpt = osp.join(out_dir, 'pruned.py'), osp.join(out_dir, 'pruned.pth')
    mutator_cfg = load_config(config).model.mutator
    report = dict(
        method='GroupFisher', source_config=config, source_checkpoint=source_checkpoint,
        target_flops_ratio=mutator_cfg.get('target_flops_ratio'),
        input_shape=list(input_shape),
        channels={name: [kept, total] for name, (kept, total) in structure.items()},
        params_before=complexity['student']['params'],
        params_after=complexity['pruned']['params'],
        flops_before=complexity['student']['flops'], flops_after=complexity['pruned']['flops'],
        flops_ratio=complexity['flops_fraction'], params_ratio=complexity['params_fraction'],
        max_output_change=max_output_change(masked, detector, input_shape),
        config=out_cfg, checkpoint=out_ckpt)

    cfg = deploy_sub_model_config(load_config(config), structure)
    cfg.load_from = out_ckpt
    cfg.resume = False
    cfg.pop('work_dir', None)
    cfg.dump(out_cfg)
    with open(out_cfg) as f:
        body = f.read()
    with open(out_cfg, 'w') as f:
        f.write(f'# GroupFisher-pruned detector of\n#   {config}\n'
                f'# params {report["params_before"]} -> {report["params_after"]}, FLOPs '
                f'{report["flops_before"]} -> {report["flops_after"]} at {input_shape}.\n'
                f'# Test: python tools/test.py {out_cfg} {out_ckpt}\n{body}')
    tmp = out_ckpt + '.tmp'
    torch.save(dict(state_dict=detector.state_dict(),
                    meta=dict(pruning=json.loads(json.dumps(report)))), tmp)
    os.replace(tmp, out_ckpt)

    rebuilt = build_student(out_cfg, out_ckpt)
    report['rebuilt_max_output_change'] = max_output_change(detector, rebuilt, input_shape)
    with open(osp.join(out_dir, 'prune_report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    if report['rebuilt_max_output_change'] > OUTPUT_TOLERANCE:
        raise RuntimeError(
            f'{out_cfg} + {out_ckpt} do not reproduce the pruned detector (largest output '
            f'change {report["rebuilt_max_output_change"]:.2e} > {OUTPUT_TOLERANCE}); has '
            "mmrazor's tracing of the architecture changed its unit names or order?")
    return report


@HOOKS.register_module()
class GroupFisherExportHook(Hook):
    """Writes the physically pruned detector of a GroupFisher run at the end of training.

    :func:`export_pruned` on the algorithm in memory (weights and channel masks) writes
    ``<work_dir>/pruned/``: ``pruned.py`` (mmrazor's ``GroupFisherDeploySubModel`` with the
    run's data, evaluator and schedule), ``pruned.pth`` and ``prune_report.json``, what
    :class:`~kd_det.pruning.FisherPruningHook` leaves, so the benchmark builds and measures both
    alike (``kd_det.benchmark.runs.collect_run_result``). The config is the one the runner
    saved into the work dir (every ``--cfg-options`` applied). Only the main process writes.
    """
    priority = 'LOW'

    def before_train(self, runner) -> None:
        algorithm = self._algorithm(runner)
        if type(algorithm).__name__ != 'GroupFisherAlgorithm':
            raise TypeError(
                'GroupFisherExportHook exports a GroupFisherAlgorithm (model.type of a '
                f'GroupFisher config); this run trains {type(algorithm).__name__}: remove the '
                'hook from custom_hooks (FisherPruningHook writes its own pruned model)')

    def after_train(self, runner) -> None:
        from mmengine.dist import is_main_process
        if not is_main_process():
            return
        config = osp.join(runner.work_dir, osp.basename(runner.cfg.filename or 'config.py'))
        if not osp.isfile(config):
            runner.cfg.dump(config)
        state = {key: value.detach().cpu()
                 for key, value in self._algorithm(runner).state_dict().items()}
        checkpoint = None
        last = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                checkpoint = f.read().strip()
        report = export_pruned(config, state, osp.join(runner.work_dir, 'pruned'), checkpoint)
        print_log(f'GroupFisherExportHook: {report["flops_ratio"]:.1%} of the FLOPs, '
                  f'{report["params_ratio"]:.1%} of the params; pruned model in '
                  f'{osp.dirname(report["config"])} (rebuilt from it: largest output change '
                  f'{report["rebuilt_max_output_change"]:.2e})', logger='current')

    @staticmethod
    def _algorithm(runner) -> nn.Module:
        from mmengine.model import is_model_wrapper
        return runner.model.module if is_model_wrapper(runner.model) else runner.model


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Command line: build the pruned detector of a checkpoint, log its FLOPs and params
    against the unpruned network and (unless ``--no-eval``) its COCO metrics.

    Returns:
        The report dict: :func:`complexity_vs_student`'s, ``pruned_units`` (``'kept/total'``
        per pruned unit) and ``metrics``.
    """
    parser = argparse.ArgumentParser(
        description='Build the pruned detector of a GroupFisher run, print its FLOPs against '
        'the unpruned student and its mAP')
    parser.add_argument('config', help='the GroupFisher training config')
    parser.add_argument('checkpoint', help='a checkpoint of that run (e.g. epoch_4.pth)')
    parser.add_argument('--input-shape', type=int, nargs=3, default=(3, 160, 160))
    parser.add_argument('--work-dir', help='for the test run (default: next to the checkpoint)')
    parser.add_argument('--no-eval', action='store_true', help='only build and measure')
    args = parser.parse_args(argv)
    detector, structure = build_pruned_detector(args.config, args.checkpoint)
    report = complexity_vs_student(detector, args.config, args.input_shape)
    report['pruned_units'] = {name: f'{kept}/{total}' for name, (kept, total)
                              in structure.items() if kept < total}
    print_log(json.dumps(report, indent=2), logger='current', level=logging.WARNING)
    if not args.no_eval:
        work_dir = args.work_dir or osp.join(osp.dirname(osp.abspath(args.checkpoint)),
                                             'pruned_test')
        report['metrics'] = evaluate_detector(detector, args.config, work_dir)
        print_log(json.dumps(report['metrics'], indent=2), logger='current',
                  level=logging.WARNING)
    return report

