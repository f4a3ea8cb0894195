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
}
NUM_CLASSES = 3


def tiny_detector_cfg(kind: str, neck_channels: int = 32, backbone: str = 'resnet') -> dict:
    """The stock config's model with a narrow ResNet-18 (or MobileNetV2) and a thin head."""
    model = get_config(STOCK_CONFIGS[kind]).model
    if backbone == 'resnet':
        model.backbone = dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                              out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                              style='pytorch', init_cfg=None)
        in_channels = [16, 32, 64, 128]
    else:
        model.backbone = dict(type='MobileNetV2', widen_factor=0.25, out_indices=(1, 2, 4, 6),
                              frozen_stages=-1, norm_eval=False, init_cfg=None)
        in_channels = [8, 8, 24, 80]
    model.neck.in_channels = in_channels
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
        head.stacked_convs = 1
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
    from mmrazor.registry import MODELS
    import kd_det  # noqa: F401
    algorithm = MODELS.build(dict(
        type='DetectionDistill',
        _scope_='mmrazor',
        architecture=tiny_detector_cfg(student_kind, student_neck, student_backbone),
        teacher=tiny_detector_cfg(teacher_kind, teacher_neck),
        teacher_head=teacher_head,
        distiller=distiller))
    algorithm.train()
    return algorithm
