"""SparseBiFPN: fusion arithmetic, output shapes, edge removal, and inside mmdet detectors."""
import math

import pytest
import torch

import kd_det  # noqa: F401  (registers SparseBiFPN)
from kd_det.models.necks import SparseBiFPN, fast_normalized_fusion
from kd_det.models.necks.sparse_bifpn import node_inputs


def _features(in_channels, height, width, num_levels, first_stride=8):
    """Backbone-like features: each level ceil-halves the previous one."""
    feats, h, w = [], math.ceil(height / first_stride), math.ceil(width / first_stride)
    for channels in in_channels[:num_levels]:
        feats.append(torch.randn(2, channels, h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return feats


def test_fast_normalized_fusion_known_numbers():
    a, b = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 4.0)
    fused = fast_normalized_fusion([a, b], torch.tensor([1.0, 3.0]), eps=1e-4)
    assert torch.allclose(fused, torch.full_like(a, (1 * 2 + 3 * 4) / (4 + 1e-4)))
    # ReLU: a negative weight switches its edge off, the rest renormalise without it
    fused = fast_normalized_fusion([a, b], torch.tensor([-1.0, 2.0]), eps=1e-4)
    assert torch.allclose(fused, torch.full_like(a, 2 * 4 / (2 + 1e-4)))
    # all weights off: eps keeps it finite (zero)
    assert torch.equal(fast_normalized_fusion([a, b], torch.tensor([0.0, -1.0])),
                       torch.zeros_like(a))
    with pytest.raises(ValueError, match='2 features but 3'):
        fast_normalized_fusion([a, b], torch.ones(3))


def test_node_inputs_follow_efficientdet_layout():
    nodes = node_inputs(5)
    assert list(nodes) == ['td3', 'td2', 'td1', 'out0', 'out1', 'out2', 'out3', 'out4']
    assert nodes['td2'] == ('in', 'up') and nodes['out2'] == ('in', 'td', 'down')
    assert nodes['out0'] == ('in', 'up') and nodes['out4'] == ('in', 'down')
    assert list(node_inputs(2)) == ['out0', 'out1']


@pytest.mark.parametrize('in_channels,start_level,num_outs,extra,height,width,repeats', [
    ([16, 48, 160], 0, 5, 'max_pool', 160, 160, 1),
    ([16, 48, 160], 0, 5, 'conv', 96, 128, 2),       # non-square
    ([8, 16, 32, 64], 1, 4, 'max_pool', 100, 72, 1),  # start_level, odd sizes
    ([8, 16, 32], 0, 3, 'max_pool', 64, 96, 3),       # no extra level
])
def test_output_shapes(in_channels, start_level, num_outs, extra, height, width, repeats):
    neck = SparseBiFPN(in_channels, 24, num_outs, start_level=start_level, num_repeats=repeats,
                       extra_downsample=extra).eval()
    feats = _features(in_channels, height, width, len(in_channels))
    with torch.no_grad():
        outs = neck(feats)
    h, w = feats[start_level].shape[2:]
    expected = []
    for _ in range(num_outs):
        expected.append((2, 24, h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    assert [tuple(o.shape) for o in outs] == expected


def test_dropped_edges_remove_weights_and_dead_top_down_nodes():
    full = SparseBiFPN([16, 48, 160], 32, 5)
    # td2 is read by out2 (td edge) and td1 (up edge): dropping both makes td2 dead
    slim = SparseBiFPN([16, 48, 160], 32, 5, dropped_edges=['0.out2.td', '0.td1.up'])
    assert 'td2' in full.layers[0].nodes and 'td2' not in slim.layers[0].nodes
    assert slim.layers[0].nodes['out2'].inputs == ('in', 'down')
    assert slim.layers[0].nodes['out2'].fusion_weight.shape == (2, )
    assert slim.layers[0].nodes['td1'].inputs == ('in', )
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in full.parameters())
    with pytest.raises(ValueError, match='unknown dropped_edges'):
        SparseBiFPN([16, 48, 160], 32, 5, dropped_edges=['0.out2.up'])
    with pytest.raises(ValueError, match='no input edge left'):
        SparseBiFPN([16, 48, 160], 32, 5, dropped_edges=['0.out4.in', '0.out4.down'])


def test_zero_weight_edge_removal_keeps_outputs():
    torch.manual_seed(0)
    full = SparseBiFPN([16, 48, 160], 32, 5).eval()
    full.layers[0].nodes['out2'].fusion_weight.data = torch.tensor([0.7, -0.2, 1.3])
    slim = SparseBiFPN([16, 48, 160], 32, 5, dropped_edges=['0.out2.td']).eval()
    state = full.state_dict()
    state['layers.0.nodes.out2.fusion_weight'] = torch.tensor([0.7, 1.3])
    slim.load_state_dict(state, strict=True)
    feats = _features([16, 48, 160], 64, 96, 3)
    with torch.no_grad():
        for a, b in zip(full(feats), slim(feats)):
            assert torch.allclose(a, b, atol=1e-6)


def test_requires_norm_and_known_extra_mode():
    with pytest.raises(ValueError, match='per-channel norm'):
        SparseBiFPN([16, 48], 32, 3, norm_cfg=None)
    with pytest.raises(ValueError, match='extra_downsample'):
        SparseBiFPN([16, 48], 32, 3, extra_downsample='avg')


def _swap_neck(config: str, neck_channels: int = 64):
    """A stock mmdet detector config with its FPN replaced by SparseBiFPN (narrow, for speed)."""
    from mmengine.hub import get_config
    cfg = get_config(config)
    fpn = cfg.model.neck
    cfg.model.neck = dict(type='SparseBiFPN', in_channels=fpn.in_channels,
                          out_channels=neck_channels, start_level=fpn.start_level,
                          num_outs=fpn.num_outs, extra_downsample='conv')
    cfg.model.bbox_head.in_channels = neck_channels
    cfg.model.bbox_head.feat_channels = neck_channels
    cfg.model.backbone.init_cfg = None
    return cfg


@pytest.mark.parametrize('config', [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
])
def test_neck_in_stock_detectors(config):
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = _swap_neck(config)
    model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128), (3, 96, 128)],
                            num_items=[3, 2], num_classes=80)
    data = model.data_preprocessor(packed, True)
    model.train()
    losses = model(**data, mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.neck.layers[0].nodes['out2'].fusion_weight.grad is not None
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
    # P3 (stride 8) .. P7 of a 96 x 128 input
    assert [tuple(f.shape[2:]) for f in feats] == [(12, 16), (6, 8), (3, 4), (2, 2), (1, 1)]
    assert all(f.shape[1] == 64 for f in feats)


def test_eager_inference_fast_paths_give_the_training_path_results():
    from kd_det.models.necks.sparse_bifpn import max_pool_3x3_s2
    for shape in ((1, 64, 20, 20), (2, 8, 5, 7), (1, 3, 1, 1)):
        x = torch.randn(shape)
        assert torch.equal(max_pool_3x3_s2(x), torch.nn.functional.max_pool2d(x, 3, 2, 1))
        assert max_pool_3x3_s2(x).is_contiguous()  # NCHW again for the next op
    torch.manual_seed(0)
    neck = SparseBiFPN([16, 48, 160], 32, num_outs=5, num_repeats=2).eval()
    for node in neck.modules():
        if hasattr(node, 'fusion_weight'):
            node.fusion_weight.data.uniform_(-0.5, 2.0)  # some edges off (negative weight)
    feats = _features([16, 48, 160], 160, 160, 3)
    with torch.no_grad():  # eval + no grad: scalar fusion
        fast = neck(feats)
    with torch.enable_grad():  # the differentiable fusion of training
        slow = neck(feats)
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-5)


def test_onnx_export_keeps_one_maxpool_per_downsampling(tmp_path):
    import onnx
    neck = SparseBiFPN([16, 48, 160], 32, num_outs=5, num_repeats=1).eval()
    feats = tuple(_features([16, 48, 160], 160, 160, 3))
    path = str(tmp_path / 'neck.onnx')
    torch.onnx.export(neck, (feats, ), path, opset_version=11, dynamo=False)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    # 2 extra levels, 4 bottom-up downsamplings: one MaxPool each, no channels-last transposes
    assert ops.count('MaxPool') == 6 and 'Transpose' not in ops
