"""Tiny versions of stock mmdet detectors (from their mmdet:: configs) for fast tests."""
import torch
from mmdet.structures import DetDataSample
from mmengine.hub import get_config
from mmengine.structures import InstanceData

STOCK_CONFIGS = {
    'retinanet': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'fcos': 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'mmdet::atss/atss_r50_fpn_1x_coco.py',
    'gfl': 'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    'faster_rcnn': 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'tood': 'mmdet::tood/tood_r50_fpn_1x_coco.py',
    'paa': 'mmdet::paa/paa_r50_fpn_1x_coco.py',
    'ddod': 'mmdet::ddod/ddod_r50_fpn_1x_coco.py',
    'vfnet': 'mmdet::vfnet/vfnet_r50_fpn_1x_coco.py',
    'autoassign': 'mmdet::autoassign/autoassign_r50-caffe_fpn_1x_coco.py',
    'rtmdet': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'yolox': 'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py',
    'centernet': 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py',
}
# real-time detectors: their own backbone at 1/16 width (16/32/64 channels, strides 8/16/32)
CSP_BACKBONES = {
    'rtmdet': dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167,
                   widen_factor=0.0625, channel_attention=True, norm_cfg=dict(type='BN'),
                   act_cfg=dict(type='SiLU', inplace=True), init_cfg=None),
    'yolox': dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.0625,
                  out_indices=(2, 3, 4), norm_cfg=dict(type='BN'), act_cfg=dict(type='Swish'),
                  init_cfg=None),
}
NUM_CLASSES = 3


def tiny_detector_cfg(kind: str, neck_channels: int = 32, backbone: str = 'resnet') -> dict:
    """The stock config's model with a narrow ResNet-18 (or MobileNetV2) and a thin head;
    RTMDet and YOLOX keep their CSP backbone at 1/16 width, CenterNet its single stride-4
    level."""
    model = get_config(STOCK_CONFIGS[kind]).model
    if kind in CSP_BACKBONES:
        model.backbone = dict(CSP_BACKBONES[kind])
        in_channels = [16, 32, 64]
        model.neck.norm_cfg = dict(type='BN')
        model.bbox_head.norm_cfg = dict(type='BN')
    elif kind == 'centernet':
        model.backbone = dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                              out_indices=(3, ), frozen_stages=-1, norm_eval=False,
                              style='pytorch', init_cfg=None)
        in_channels = 128
        model.neck.num_deconv_filters = (32, 32, neck_channels)
    elif backbone == 'resnet':
        model.backbone = dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                              out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                              style='pytorch', init_cfg=None)
        in_channels = [16, 32, 64, 128]
    else:
        model.backbone = dict(type='MobileNetV2', widen_factor=0.25, out_indices=(1, 2, 4, 6),
                              frozen_stages=-1, norm_eval=False, init_cfg=None)
        in_channels = [8, 8, 24, 80]
    model.neck.in_channels = in_channels
    if kind != 'centernet':  # CTResNetNeck's width is its last deconv filter count
        model.neck.out_channels = neck_channels
    if kind == 'faster_rcnn':
        model.rpn_head.in_channels = neck_channels
        model.rpn_head.feat_channels = neck_channels
        model.roi_head.bbox_roi_extractor.out_channels = neck_channels
        model.roi_head.bbox_head.in_channels = neck_channels
        model.roi_head.bbox_head.fc_out_channels = 32
        model.roi_head.bbox_head.num_classes = NUM_CLASSES
    else:
        head = model.bbox_head
        head.num_classes = NUM_CLASSES
        head.in_channels = neck_channels
        head.feat_channels = neck_channels
        if 'stacked_convs' in head:
            head.stacked_convs = 1
        if kind == 'ddod':  # mmcv's CPU deformable conv rejects the 1x1 P7 of a 64x96 input
            head.use_dcn = False
        if head.get('norm_cfg', None) and head.norm_cfg.get('type') == 'GN':
            head.norm_cfg.num_groups = 8
    model.data_preprocessor = dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1],
                                   bgr_to_rgb=False, pad_size_divisor=32)
    model._scope_ = 'mmdet'
    return model


def fake_batch(batch_size: int = 2, height: int = 64, width: int = 96, boxes=None,
               seed: int = 0):
    """Normalised images (N, 3, H, W) and DetDataSamples with GT; non-square on purpose."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch_size, 3, height, width, generator=generator)
    samples = []
    for i in range(batch_size):
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width),
                                             batch_input_shape=(height, width),
                                             scale_factor=(1.0, 1.0)))
        image_boxes = boxes[i] if boxes is not None else torch.tensor(
            [[4.0, 6.0, 30.0, 40.0], [50.0, 10.0, 90.0, 60.0]])
        sample.gt_instances = InstanceData(
            bboxes=image_boxes.float(),
            labels=torch.arange(len(image_boxes)) % NUM_CLASSES)
        samples.append(sample)
    return inputs, samples


def build_distill(student_kind: str, teacher_kind: str, distiller: dict, student_backbone='resnet',
                  student_neck: int = 32, teacher_neck: int = 64, teacher_head='auto'):
    from mmengine.logging import MessageHub
    from mmrazor.registry import MODELS
    import kd_det  # noqa: F401
    # TOOD switches assigners by the epoch the runner posts; a test has no runner
    MessageHub.get_current_instance().update_info('epoch', 0)
    algorithm = MODELS.build(dict(
        type='DetectionDistill',
        _scope_='mmrazor',
        architecture=tiny_detector_cfg(student_kind, student_neck, student_backbone),
        teacher=tiny_detector_cfg(teacher_kind, teacher_neck),
        teacher_head=teacher_head,
        distiller=distiller))
    algorithm.train()
    return algorithm
