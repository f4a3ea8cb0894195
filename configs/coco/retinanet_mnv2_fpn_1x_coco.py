# COCO counterpart of the embedded student: RetinaNet with an ImageNet-pretrained MobileNetV2
# backbone and a 128-channel FPN, on mmdet's stock 1x schedule. Not measured here (no GPU, no
# COCO); GPU users run: python tools/train.py configs/coco/retinanet_mnv2_fpn_1x_coco.py
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),
        act_cfg=dict(type='LeakyReLU', negative_slope=0.1),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[32, 96, 320], out_channels=128, start_level=0,
              add_extra_convs='on_input'),
    bbox_head=dict(in_channels=128, feat_channels=128))
find_unused_parameters = True
