"""Pruning: exact when only zero channels/edges go, smaller, reloadable, and ONNX-exportable."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT
from kd_det.apis.student import build_student
from kd_det.deploy.complexity import params_and_flops
from kd_det.deploy.export import export_onnx, onnx_parity
from kd_det.pruning.channel_groups import find_channel_groups
from kd_det.pruning.prune import (max_output_change, plan_pruning, prune_checkpoint,
                                  prune_detector)

STUDENT = osp.join(REPO_ROOT,
                   'configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py')
DISTILL = osp.join(REPO_ROOT,
                   'configs/sparse_bifpn/dcd_retinanet_mnv2-sparsebifpn64_embedded_sparse.py')
ZEROED_EDGES = ['0.out2.td', '1.td2.up', '1.out3.down']


def _randomise_norms(model, seed=0):
    """Non-trivial BN statistics and affine parameters, so exactness is not an accident."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.5, 0.5),
                                      (module.running_var, 0.5, 2.0),
                                      (module.weight.data, 0.5, 1.5),
                                      (module.bias.data, -0.5, 0.5)):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)


def _zero_channels(model, fraction=3):
    """Zero every scale (BN scale and shift, or filter and bias) of 1/``fraction`` of the
    channels of each group and three fusion edges; returns the zeroed count per group."""
    generator = torch.Generator().manual_seed(1)
    zeroed = {}
    for group in find_channel_groups(model):
        dead = torch.randperm(group.num_channels, generator=generator)[:group.num_channels //
                                                                         fraction]
        for param in group.scales:
            param.data[dead] = 0
        zeroed[group.name] = len(dead)
    for edge in ZEROED_EDGES:
        layer, node, name = edge.split('.')
        fusion = model.neck.layers[int(layer)].nodes[node]
        fusion.fusion_weight.data[fusion.inputs.index(name)] = -0.25
    return zeroed


@pytest.fixture(scope='module')
def sparse_checkpoint(tmp_path_factory):
    model = build_student(STUDENT)
    _randomise_norms(model)
    zeroed = _zero_channels(model)
    path = str(tmp_path_factory.mktemp('sparse') / 'sparse.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return model, path, zeroed


def test_exact_pruning_keeps_outputs_shrinks_and_reloads(sparse_checkpoint, tmp_path):
    model, ckpt, zeroed = sparse_checkpoint
    report = prune_checkpoint(STUDENT, ckpt, str(tmp_path), threshold=0.0, divisor=1)
    reloaded = build_student(report['config'], report['checkpoint'])
    # identical outputs on a non-square batch (eval mode, randomised BN statistics)
    assert max_output_change(model, reloaded, (3, 96, 128)) < 1e-5
    assert report['max_output_change'] < 1e-5
    for name, count in zeroed.items():
        total = report['channels'][name][1]
        assert report['channels'][name] == [total - count, total]
    assert report['dropped_edges'] == sorted(ZEROED_EDGES)
    # reported params/FLOPs are those of the two models, and they shrink
    before, after = (params_and_flops(m, (3, 160, 160)) for m in (model, reloaded))
    assert (report['params_before'], report['flops_before']) == (before['params'],
                                                                 before['flops'])
    assert (report['params_after'], report['flops_after']) == (after['params'], after['flops'])
    # the parts add up to the whole, and the pruned neck costs less
    for cost in (before, after):
        assert cost['backbone_flops'] + cost['neck_flops'] + cost['bbox_head_flops'] == \
            cost['flops']
    assert after['neck_flops'] < before['neck_flops']
    assert report['params_after'] < 0.6 * report['params_before']
    assert report['flops_after'] < 0.7 * report['flops_before']
    # a plain mmdet config: pruned widths, no sparsity hook, loads its own weights
    cfg = Config.fromfile(report['config'])
    assert cfg.model.type == 'RetinaNet' and cfg.model.backbone.type == 'SlimMobileNetV2'
    assert cfg.model.neck.out_channels == cfg.model.bbox_head.in_channels == 43
    assert cfg.model.bbox_head.feat_channels == 43
    assert cfg.model.neck.dropped_edges == sorted(ZEROED_EDGES)
    assert cfg.load_from == report['checkpoint']
    assert not [h for h in cfg.get('custom_hooks', []) if h['type'] == 'SparsityHook']


def test_ratio_pruning_counts_and_onnx_parity(sparse_checkpoint, tmp_path):
    model, ckpt, _ = sparse_checkpoint
    report = prune_checkpoint(STUDENT, ckpt, str(tmp_path), ratio=0.5,
                              families=('neck', 'head'))
    assert report['channels']['neck'] == [32, 64]
    head = [v for k, v in report['channels'].items() if k.startswith('bbox_head')]
    assert len(head) == 4 and len({tuple(v) for v in head}) == 1  # one feat_channels for all
    assert not any(k.startswith('backbone') for k in report['channels'])
    assert head[0][0] % 8 == 0 and head[0][0] >= 32  # the default divisor rounds up to 8s
    pruned = build_student(report['config'], report['checkpoint'])
    onnx_path = str(tmp_path / 'pruned.onnx')
    export_onnx(pruned, onnx_path, (3, 96, 128))
    parity = onnx_parity(pruned, onnx_path, (3, 96, 128))
    assert parity['num_outputs'] == 10 and parity['max_abs_diff'] < 1e-4


def test_neck_pruning_is_exact_for_a_groupnorm_fcos_head():
    from mmdet.registry import MODELS
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = get_config('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.neck = dict(type='SparseBiFPN', in_channels=[256, 512, 1024, 2048],
                          out_channels=32, start_level=1, num_outs=5)
    cfg.model.bbox_head.in_channels = cfg.model.bbox_head.feat_channels = 32
    # FCOSHead's default GroupNorm has 32 groups: 1 channel each fails on the 1x1 P7
    cfg.model.bbox_head.norm_cfg = dict(type='GN', num_groups=8, requires_grad=True)
    model = MODELS.build(cfg.model).eval()
    _randomise_norms(model)
    groups = find_channel_groups(model)
    # GroupNorm head and ResNet backbone are not covered: only the neck group, read by the
    # first conv of each head branch
    assert [g.name for g in groups] == ['neck']
    assert {k for k, dim in groups[0].slices if dim == 1 and k.startswith('bbox_head')} == {
        'bbox_head.cls_convs.0.conv.weight', 'bbox_head.reg_convs.0.conv.weight'}
    for param in groups[0].scales:
        param.data[::4] = 0
    plan = plan_pruning(model, threshold=0.0)
    pruned, new_cfg = prune_detector(model, Config(dict(model=cfg.model)), plan)
    assert new_cfg.model.neck.out_channels == 24 and new_cfg.model.bbox_head.in_channels == 24
    assert max_output_change(model, pruned, (3, 64, 96)) < 1e-5


def test_scale_histogram_reports_the_zeroed_fraction(sparse_checkpoint, tmp_path):
    from kd_det.pruning.sparsity_report import plot_scale_histograms
    _, ckpt, _ = sparse_checkpoint
    out = str(tmp_path / 'hist.png')
    summary = plot_scale_histograms(STUDENT, [ckpt], out, labels=['sparse'])
    assert osp.getsize(out) > 10_000
    assert summary['sparse']['neck'] == pytest.approx(21 / 64)
    assert summary['sparse']['head'] == pytest.approx(21 / 64)
    assert summary['sparse']['fusion'] == pytest.approx(3 / 38)


def test_distillation_checkpoint_prunes_to_a_plain_student(sparse_checkpoint, tmp_path):
    model, _, _ = sparse_checkpoint
    state = {f'architecture.{k}': v for k, v in model.state_dict().items()}
    state['teacher.backbone.conv1.conv.weight'] = torch.zeros(1)
    ckpt = str(tmp_path / 'distill.pth')
    torch.save(dict(state_dict=state), ckpt)
    report = prune_checkpoint(DISTILL, ckpt, str(tmp_path / 'out'), threshold=0.0)
    cfg = Config.fromfile(report['config'])
    assert cfg.model.type == 'RetinaNet' and 'teacher' not in cfg.model
    assert not cfg.get('custom_hooks')
    assert max_output_change(model, build_student(report['config'], report['checkpoint']),
                             (3, 64, 64)) < 1e-5


def test_benchmark_prune_chain_prunes_each_seed_and_adds_rows(sparse_checkpoint, tmp_path,
                                                              monkeypatch):
    import json
    from kd_det.benchmark import Benchmark
    from kd_det.pruning.prune_chain import run_prune_chain
    _, ckpt, _ = sparse_checkpoint
    monkeypatch.chdir(REPO_ROOT)
    spec = Config.fromfile(osp.join(REPO_ROOT, 'configs/benchmark/sparse_bifpn.py'))
    bench = Benchmark(spec, seeds=[0], work_root=str(tmp_path))
    assert [m.role for m in bench.methods] == ['teacher'] + ['student'] * 4
    source = next(m for m in bench.methods if m.name == spec.prune.source)
    run_dir = bench.run_dir(source, 0)
    os.makedirs(run_dir, exist_ok=True)
    with open(osp.join(run_dir, 'result.json'), 'w') as f:
        json.dump(dict(checkpoint=ckpt), f)
    trained = []

    def fake_train(method, seed):  # fine-tuning itself is tools/train.py, tested elsewhere
        trained.append((method.name, method.config, seed))
        with open(osp.join(bench.run_dir(method, seed), 'result.json'), 'w') as f:
            json.dump(dict(checkpoint=ckpt), f)

    monkeypatch.setattr(bench, 'train_one', fake_train)
    run_prune_chain(bench, **spec.prune)
    names = [f'{spec.prune.source} + FT (not pruned)', f'{spec.prune.source} pruned 30% + FT',
             f'{spec.prune.source} pruned 50% + FT']
    assert [name for name, _, _ in trained] == names
    for name, config, _ in trained:
        cfg = Config.fromfile(config)
        assert cfg.train_cfg.max_epochs == 4 and cfg.optim_wrapper.optimizer.lr == 1e-3
        assert cfg.load_from.endswith('pruned.pth')
    assert [m.name for m in bench.methods[-3:]] == names
    reports = [json.load(open(osp.join(osp.dirname(config), 'prune_report.json')))
               for _, config, _ in trained]
    not_pruned = reports[0]  # ratio 0: only exactly dead parts go, the outputs stay the same
    assert all(kept == total for kept, total in not_pruned['channels'].values())
    assert not_pruned['flops_ratio'] > 0.999 and not_pruned['max_output_change'] < 1e-4
    assert reports[1]['flops_ratio'] > reports[2]['flops_ratio']


def test_pruning_refuses_an_activation_that_does_not_keep_zero():
    from kd_det.models.necks import SparseBiFPN
    from kd_det.pruning.channel_groups import neck_groups

    class Detector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.neck = SparseBiFPN([8, 16], 8, 3, act_cfg=dict(type='Sigmoid'))

    with pytest.raises(ValueError, match='act\\(0\\) = 0'):
        neck_groups(Detector())
