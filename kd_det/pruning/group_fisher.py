"""GroupFisher pruning (mmrazor) of a detector to a FLOPs target while it fine-tunes, and the
physically pruned plain detector it leaves.

Liu et al., "Group Fisher Pruning for Practical Network Compression", ICML 2021; the algorithm,
its channel units and hooks are mmrazor's (``mmrazor.implementations.pruning.group_fisher``).
mmrazor's mutator removes one channel each time the algorithm asks (every ``interval``
iterations) and never stops; upstream therefore prunes in one run, saves the checkpoint that
crosses the target and fine-tunes it in a second run. The pruned rows of kd_det's benchmark get
one 4-epoch fine-tune instead, so :class:`FlopsTargetGroupFisherMutator` removes as many of the
least important channels per step as a linear FLOPs schedule asks, reaches the target by a set
iteration and then only trains.

At the end of the run :class:`GroupFisherExportHook` writes the physically pruned detector
into ``<work_dir>/pruned/`` (:func:`export_pruned`: ``pruned.py``, mmrazor's
``GroupFisherDeploySubModel`` with the run's data and evaluator, ``pruned.pth`` and
``prune_report.json``), the artifact :class:`~kd_det.pruning.FisherPruningHook` leaves, so the
benchmark measures both alike.

:func:`build_pruned_detector` turns any checkpoint of the run (weights + channel masks) into
that plain mmdet detector with fewer channels, :func:`complexity_vs_student` compares its
FLOPs with the unpruned student's, :func:`evaluate_detector` scores it on the config's test
split; :func:`main` does all three::

    python -c 'import sys; from kd_det.pruning.group_fisher import main; main(sys.argv[1:])' \
        CONFIG CHECKPOINT

(not ``python -m``: run as ``__main__`` the module would register the mutator a second time when
``import kd_det`` imports it.)
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

import kd_det  # noqa: F401  (compat shims first: mmrazor cannot be imported without them)
from mmrazor.implementations.pruning.group_fisher import GroupFisherChannelMutator
from mmrazor.registry import MODELS
from mmrazor.utils import RuntimeInfo

from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.deploy.complexity import params_and_flops
from kd_det.utils.checkpoint import load_state_dict_strict

GROUP_FISHER_TYPES = ('GroupFisherAlgorithm', 'mmrazor.GroupFisherAlgorithm')
# hooks that need the algorithm's mutator, or export it: not in the pruned detector's config
GROUP_FISHER_HOOKS = ('PruningStructureHook', 'ResourceInfoHook', 'GroupFisherExportHook')
# largest output change allowed between the pruned detector and its rebuild from the files
OUTPUT_TOLERANCE = 1e-4


@MODELS.register_module()
class FlopsTargetGroupFisherMutator(GroupFisherChannelMutator):
    """GroupFisher's channel mutator, pruning on a FLOPs schedule down to a target.

    At every pruning step (mmrazor's ``GroupFisherAlgorithm`` calls :meth:`try_prune` every
    ``interval`` iterations) it removes the channels of lowest normalised Fisher importance
    (stock GroupFisher removes one) until the network's FLOPs are at most the scheduled
    fraction of the original: ``1 - (1 - target_flops_ratio) * min(1, iter / prune_until_iter)``.
    Once the FLOPs are at or below ``target_flops_ratio`` it stops pruning and stops recording
    Fisher information (no hooks, no overhead), so the rest of the run is plain fine-tuning.

    FLOPs are :func:`kd_det.deploy.complexity.params_and_flops`'s (mmengine's FlopAnalyzer,
    the count every benchmark row reports) of the masked architecture at ``input_shape``; one
    measurement takes about 0.8 s for the embedded student at 1x3x160x160.

    Args:
        target_flops_ratio (float): final FLOPs as a fraction of the unpruned network's, in
            (0, 1]. Defaults to 0.5.
        prune_until_iter (int): the iteration at which the schedule reaches the target.
            Defaults to 250.
        input_shape (Sequence[int]): ``(1, 3, H, W)`` of the FLOPs measurement. Defaults to
            ``(1, 3, 160, 160)``.
        **kwargs: ``GroupFisherChannelMutator``'s ``channel_unit_cfg`` and ``parse_cfg``.
    """
    # how far (fraction of the original FLOPs) a multi-channel chunk may go below the schedule
    OVERSHOOT = 0.01

    def __init__(self, target_flops_ratio: float = 0.5, prune_until_iter: int = 250,
                 input_shape: Sequence[int] = (1, 3, 160, 160), **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < target_flops_ratio <= 1:
            raise ValueError('model.mutator.target_flops_ratio must be in (0, 1], got '
                             f'{target_flops_ratio!r}')
        if prune_until_iter < 1:
            raise ValueError('model.mutator.prune_until_iter must be a positive iteration, got '
                             f'{prune_until_iter!r}')
        if len(input_shape) != 4 or input_shape[0] != 1:
            raise ValueError('model.mutator.input_shape must be (1, 3, H, W), got '
                             f'{input_shape!r}')
        self.target_flops_ratio = target_flops_ratio
        self.prune_until_iter = prune_until_iter
        self.input_shape = tuple(input_shape)
        self.original_flops: Optional[int] = None
        self.finished = False
        # FLOPs fraction saved per removed channel, from the last measured chunk
        self._ratio_per_channel: Optional[float] = None
        # (active channels, FLOPs fraction) of the last measurement: masks change only here
        self._measured: Optional[Tuple[int, float]] = None
        # held in a list, not as an attribute: the architecture must not become a submodule
        # of the mutator (its weights would be saved twice)
        self._supernet = []

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Make ``supernet`` dynamic (mmrazor) and measure its unpruned FLOPs."""
        super().prepare_from_supernet(supernet)
        self._supernet = [supernet]
        self.original_flops = self.flops()

    def flops(self) -> int:
        """FLOPs of the architecture with its current channel masks (one forward, no grad)."""
        supernet = self._supernet[0]
        training = supernet.training
        flops = params_and_flops(supernet, self.input_shape[1:])['flops']
        supernet.train(training)
        return flops

    def flops_ratio(self) -> float:
        """FLOPs of the masked architecture as a fraction of the unpruned one's."""
        active = self.active_channels()
        if self._measured is None or self._measured[0] != active:
            self._measured = (active, self.flops() / self.original_flops)
        return self._measured[1]

    def scheduled_flops_ratio(self, iteration: int) -> float:
        """The FLOPs fraction the schedule asks for at ``iteration`` (1 at iteration 0)."""
        progress = min(1.0, iteration / self.prune_until_iter)
        return 1 - (1 - self.target_flops_ratio) * progress

    def active_channels(self) -> int:
        """Channels still active in all prunable units."""
        return sum(int(unit.mutable_channel.activated_channels) for unit in self.mutable_units)

    def remove_least_important(self, count: int) -> int:
        """Mask the ``count`` channels of lowest importance over all units, each unit keeping at
        least one: what ``count`` calls of mmrazor's ``try_prune`` remove, in one pass.

        Returns:
            The number of channels masked: 0 when an importance is NaN (mmrazor then skips the
            step) or no unit has a channel to spare.
        """
        scores, owners = [], []
        for unit in self.mutable_units:
            importance = unit.importance()  # (C, ), masked channels at max + 1
            if importance.isnan().any():
                print_log(f'{unit.name}: NaN Fisher importance, this pruning step is skipped',
                          logger='current', level=logging.WARNING)
                return 0
            active = unit.mutable_channel.current_mask.nonzero().flatten()
            spare = active[active != active[importance[active].argmax()]]
            scores.append(importance[spare])
            owners += [(unit, int(channel)) for channel in spare]
        if not owners:
            return 0
        lowest = torch.cat(scores).argsort()[:count]
        for index in lowest.tolist():
            unit, channel = owners[index]
            unit.mutable_channel.mask[channel] = 0.0
        return len(lowest)

    def try_prune(self) -> None:
        """Remove least-important channels until the FLOPs meet this iteration's schedule.

        Channels go in chunks sized from the FLOPs per channel of the last chunk (80 % of what
        that rate says is still needed), so a step that removes a hundred cheap backbone
        channels measures a few times, not a hundred. Channels differ a lot in cost (a head
        channel is ~1.4 % of the student's FLOPs, a late backbone channel ~0.01 %): a chunk
        that goes more than ``OVERSHOOT`` below the schedule is undone (masks restored) and
        retried at half its size.
        """
        if self.finished:
            return
        iteration = RuntimeInfo.iter()
        scheduled = self.scheduled_flops_ratio(iteration)
        ratio = self.flops_ratio()
        removed, forced_chunk = 0, None
        while ratio > scheduled:
            chunk = forced_chunk or (1 if self._ratio_per_channel is None else max(
                1, int(0.8 * (ratio - scheduled) / self._ratio_per_channel)))
            masks = [unit.mutable_channel.mask.clone() for unit in self.mutable_units]
            chunk_removed = self.remove_least_important(chunk)
            if chunk_removed == 0:
                break
            new_ratio = self.flops_ratio()
            saved = ratio - new_ratio
            self._ratio_per_channel = saved / chunk_removed if saved > 0 else None
            if new_ratio < scheduled - self.OVERSHOOT and chunk_removed > 1:
                for unit, mask in zip(self.mutable_units, masks):
                    unit.mutable_channel.mask.copy_(mask)
                forced_chunk = chunk_removed // 2
                continue
            forced_chunk = None
            removed += chunk_removed
            ratio = new_ratio
        self.finished = ratio <= self.target_flops_ratio
        if removed:
            print_log(f'GroupFisher iter {iteration}: removed {removed} channels, FLOPs '
                      f'{ratio:.3f} of the original (scheduled {scheduled:.3f}, target '
                      f'{self.target_flops_ratio})' + (', target reached' if self.finished
                                                       else ''), logger='current')

    def start_record_info(self) -> None:
        if not self.finished:
            super().start_record_info()

    def update_imp(self) -> None:
        if not self.finished:
            super().update_imp()


def build_group_fisher_algorithm(config: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """The GroupFisher algorithm of ``config`` with its architecture's ``init_cfg`` removed
    (the weights come from a checkpoint loaded afterwards; nothing is read at build)."""
    from mmengine.registry import init_default_scope
    cfg = load_config(config, cfg_options=cfg_options)
    if cfg.model.get('type') not in GROUP_FISHER_TYPES:
        raise ValueError(f'{config} is not a GroupFisher config: model.type is '
                         f'{cfg.model.get("type")!r}, expected GroupFisherAlgorithm')
    cfg.model.architecture.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def pruning_structure(algorithm: nn.Module) -> Dict[str, Tuple[int, int]]:
    """``{unit name: (kept channels, original channels)}`` of a GroupFisher algorithm.

    A unit is a set of layers whose channels must be pruned together (a conv's output, the
    BN after it and every conv reading it; a residual sum ties its branches into one unit).
    """
    return {unit.name: (int(unit.mutable_channel.activated_channels), unit.num_channels)
            for unit in algorithm.mutator.mutable_units}


def build_pruned_detector(config: str, checkpoint: str,
                          cfg_options: Optional[dict] = None) -> Tuple[nn.Module, Dict]:
    """The physically pruned plain detector of a GroupFisher run, with the run's weights.

    The checkpoint (``epoch_N.pth`` of ``tools/train.py`` on the GroupFisher config) holds the
    algorithm: the masked architecture (``architecture.*``) and every unit's channel mask
    (``mutator.units.K.mutable_channel.mask``). The masks are applied to a freshly traced
    algorithm, then mmrazor's ``export_fix_subnet`` / ``load_fix_subnet`` replace each dynamic
    op by a static one holding only the kept channels.

    Returns:
        ``(detector, structure)``: an mmdet detector in eval mode (``extract_feat``,
        ``bbox_head``, ``predict`` and ``forward(inputs, mode='tensor')`` on ``(N, 3, H, W)``
        work as for the unpruned student) and :func:`pruning_structure`'s dict.

    Raises:
        CheckpointMismatchError: the checkpoint is not of this GroupFisher config.
    """
    algorithm = build_group_fisher_algorithm(config, cfg_options)
    load_state_dict_strict(algorithm, checkpoint, role='GroupFisher')
    structure = pruning_structure(algorithm)
    return compact_architecture(algorithm), structure


def compact_architecture(algorithm: nn.Module) -> nn.Module:
    """Replace, in place, every dynamic op of ``algorithm.architecture`` by a static one holding
    only its unit's kept channels (mmrazor's ``export_fix_subnet`` / ``load_fix_subnet``, kept
    channels in their original order); returns the architecture, in eval mode."""
    from mmrazor.structures.subnet.fix_subnet import export_fix_subnet, load_fix_subnet
    detector = algorithm.architecture
    load_fix_subnet(detector, export_fix_subnet(detector)[0])
    return detector.eval()


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

