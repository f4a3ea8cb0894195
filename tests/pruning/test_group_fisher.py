"""mmrazor's GroupFisher on the embedded student: the config builds, a training step records
Fisher information, the FLOPs schedule prunes to its target, the physically pruned detector
is smaller, keeps the trained weights and runs, and a run leaves it as a plain config +
checkpoint that kd_det's tools, the benchmark and the ONNX export take."""
import json
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from conftest import REPO_ROOT, tiny_run_options
from kd_det.apis.student import build_student
from kd_det.deploy.complexity import params_and_flops
from kd_det.pruning.group_fisher import (FlopsTargetGroupFisherMutator,
                                         build_group_fisher_algorithm, build_pruned_detector,
                                         pruning_structure)
from kd_det.pruning.group_fisher_export import GroupFisherExportHook, complexity_vs_student
from kd_det.pruning.prune import max_output_change
from models.tiny_detectors import fake_batch

GROUP_FISHER = osp.join(
    REPO_ROOT, 'configs/pruning/group_fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py')
IMAGE = (3, 96, 128)


def _set_iteration(iteration: int) -> None:
    """What the runner posts before each step; mmrazor's RuntimeInfo reads it."""
    MessageHub.get_instance(f'group_fisher_{uuid.uuid4().hex[:8]}').update_info(
        'iter', iteration)


@pytest.fixture(scope='module')
def algorithm():
    # FLOPs measured at the test image size: half the time of the config's 160x160
    shape = (1, ) + IMAGE
    return build_group_fisher_algorithm(GROUP_FISHER, {'model.mutator.input_shape': shape,
                                                       'model.mutator.parse_cfg.demo_input':
                                                       shape})


def test_schedule_falls_linearly_to_the_target():
    mutator = FlopsTargetGroupFisherMutator.__new__(FlopsTargetGroupFisherMutator)
    mutator.target_flops_ratio, mutator.prune_until_iter = 0.5, 250
    assert [mutator.scheduled_flops_ratio(i) for i in (0, 125, 250, 400)] == [
        1.0, 0.75, 0.5, 0.5]


def test_config_traces_backbone_neck_and_head(algorithm):
    assert isinstance(algorithm.mutator, FlopsTargetGroupFisherMutator)
    units = pruning_structure(algorithm)
    assert {name.split('.')[0] for name in units} == {'backbone', 'neck', 'bbox_head'}
    assert all(kept == total for kept, total in units.values())
    assert algorithm.mutator.flops_ratio() == 1.0


def test_train_step_records_fisher_of_every_unit(algorithm):
    # mmdet's MobileNetV2 would also run a dead conv2 that never gets a gradient (mmrazor then
    # asserts); the config's SlimMobileNetV2 leaves it out
    _set_iteration(1)  # not a pruning step
    inputs, samples = fake_batch(2, *IMAGE[1:])
    optim_wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(), lr=0.0))
    algorithm.train()
    losses = algorithm.train_step(dict(inputs=inputs, data_samples=samples), optim_wrapper)
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))
    assert all(unit.normalized_fisher_info.abs().sum() > 0
               for unit in algorithm.mutator.mutable_units)


def test_prunes_to_target_then_pruned_detector_is_smaller_with_same_outputs(
        algorithm, tmp_path):
    mutator = algorithm.mutator
    generator = torch.Generator().manual_seed(0)
    for unit in mutator.mutable_units:
        unit.normalized_fisher_info = torch.rand(unit.num_channels, generator=generator)
    _set_iteration(mutator.prune_until_iter)
    mutator.try_prune()
    # down to the target, not far below it (a chunk that overshoots is undone and halved)
    assert mutator.finished
    assert 0.47 < mutator.flops_ratio() <= mutator.target_flops_ratio
    # once at the target, no more pruning and no more Fisher recording
    before = pruning_structure(algorithm)
    mutator.try_prune()
    assert pruning_structure(algorithm) == before

    checkpoint = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(state_dict=algorithm.state_dict()), checkpoint)
    detector, structure = build_pruned_detector(GROUP_FISHER, checkpoint)
    assert structure == before and any(kept < total for kept, total in structure.values())
    assert not any('Dynamic' in type(m).__name__ or 'GroupFisher' in type(m).__name__
                   for m in detector.modules())

    report = complexity_vs_student(detector, GROUP_FISHER, IMAGE)
    assert report['pruned']['flops'] < report['student']['flops']
    assert report['flops_fraction'] <= 0.5
    assert report['pruned']['flops'] == params_and_flops(algorithm.architecture, IMAGE)['flops']

    image = torch.randn(1, *IMAGE, generator=generator)
    algorithm.architecture.eval()
    with torch.no_grad():
        cls_pruned, reg_pruned = detector.bbox_head(detector.extract_feat(image))
        cls_masked, reg_masked = algorithm.architecture.bbox_head(
            algorithm.architecture.extract_feat(image))
    for pruned, masked in zip(cls_pruned + reg_pruned, cls_masked + reg_masked):
        assert torch.allclose(pruned, masked, atol=1e-5)


class _LastValMetrics(Hook):
    """Keeps the metrics of the run's last validation."""
    metrics: dict = {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


@pytest.fixture(scope='module')
def group_fisher_run(tiny_dataset, tmp_path_factory):
    """3 iterations of the GroupFisher config from random weights: pruning at iterations 1 and
    2 (the schedule reaches 50 % at 2), validation, then GroupFisherExportHook."""
    from kd_det.apis.runner import build_train_runner
    work_dir = tmp_path_factory.mktemp('group_fisher_run')
    shape = (1, ) + IMAGE
    options = tiny_run_options(tiny_dataset, epochs=1, batch_size=16)
    options.update({
        'model.architecture.init_cfg': None, 'model.interval': 1,
        'model.mutator.prune_until_iter': 2, 'model.mutator.input_shape': shape,
        'model.mutator.parse_cfg.demo_input': shape,
        # an untrained head scores every box below the default 0.05: keep them all, so the
        # mAP compared below is not an empty 0
        'model.architecture.test_cfg.score_thr': 0.0})
    runner = build_train_runner(GROUP_FISHER, work_dir=str(work_dir), cfg_options=options)
    val = _LastValMetrics()
    runner.register_hook(val)
    runner.train()
    return runner, work_dir, val.metrics


def test_run_writes_the_pruned_detector_that_build_student_rebuilds(group_fisher_run):
    runner, work_dir, _ = group_fisher_run
    pruned = work_dir / 'pruned'
    report = json.loads((pruned / 'prune_report.json').read_text())
    assert report['flops_ratio'] <= 0.5 + 0.005 and report['params_after'] < report[
        'params_before']
    assert any(kept < total for kept, total in report['channels'].values())
    assert report['max_output_change'] < 1e-4 and report['rebuilt_max_output_change'] < 1e-4
    cfg = Config.fromfile(str(pruned / 'pruned.py'))
    assert cfg.model.type == 'mmrazor.GroupFisherDeploySubModel'
    assert cfg.load_from == str(pruned / 'pruned.pth')
    assert [h['type'] for h in cfg.custom_hooks] == [] and 'model_wrapper_cfg' not in cfg

    # what the benchmark builds and measures: no dynamic op, the run's masked network exactly
    detector = build_student(str(pruned / 'pruned.py'), str(pruned / 'pruned.pth'), {})
    assert not any('Dynamic' in type(m).__name__ for m in detector.modules())
    assert params_and_flops(detector, IMAGE)['flops'] == report['flops_after']
    in_memory = runner.model.architecture
    training = in_memory.training
    assert max_output_change(in_memory, detector, IMAGE) < 1e-4
    in_memory.train(training)


def test_pruned_detector_tests_like_the_run_and_exports_to_onnx(group_fisher_run, tmp_path):
    from kd_det.apis.runner import build_test_runner
    from kd_det.deploy.export import export_onnx, onnx_parity
    runner, work_dir, val_metrics = group_fisher_run
    pruned = work_dir / 'pruned'
    # tools/test.py's runner on the written files: the mAP of the run's last validation
    options = {'experiment_name': f'test_{uuid.uuid4().hex[:12]}',
               'visualizer.name': f'visualizer_{uuid.uuid4().hex[:12]}'}
    test_runner = build_test_runner(str(pruned / 'pruned.py'), str(pruned / 'pruned.pth'),
                                    str(tmp_path / 'test'), options)
    assert test_runner.test() == pytest.approx(val_metrics, abs=1e-4)
    # 3 iterations from random weights score ~0 mAP either way: the detections themselves
    # are what must match
    batch = next(iter(test_runner.test_dataloader))
    runner.model.eval()
    with torch.no_grad():
        expected = runner.model.val_step(batch)
        actual = test_runner.model.test_step(batch)
    for want, got in zip(expected, actual):
        assert len(got.pred_instances) == len(want.pred_instances) > 0
        assert torch.allclose(got.pred_instances.bboxes, want.pred_instances.bboxes, atol=1e-3)
        assert torch.allclose(got.pred_instances.scores, want.pred_instances.scores, atol=1e-5)

    detector = build_student(str(pruned / 'pruned.py'), str(pruned / 'pruned.pth'))
    onnx_path = str(tmp_path / 'pruned.onnx')
    export_onnx(detector, onnx_path, IMAGE)
    assert onnx_parity(detector, onnx_path, IMAGE)['max_abs_diff'] < 1e-4


def test_export_hook_refuses_a_run_that_is_not_group_fisher():
    from types import SimpleNamespace
    with pytest.raises(TypeError, match='remove the hook from custom_hooks'):
        GroupFisherExportHook().before_train(SimpleNamespace(model=torch.nn.Linear(1, 1)))
