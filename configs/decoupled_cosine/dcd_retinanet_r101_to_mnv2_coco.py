# COCO, heterogeneous pair: RetinaNet R101 (256-channel FPN) -> RetinaNet MobileNetV2
# (128-channel FPN). The distiller adds a learnable 1x1 connector per level (128 -> 256).
# Not measured here (no GPU).
_base_ = ['../coco/retinanet_mnv2_fpn_1x_coco.py']

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DetectionDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth',
    distiller=dict(type='DecoupledCosineDistiller'))  # v2 defaults
