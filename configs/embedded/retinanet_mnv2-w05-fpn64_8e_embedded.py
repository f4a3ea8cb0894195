# Student baseline: RetinaNet with a MobileNetV2-0.5 backbone and a 64-channel FPN (P3-P7),
# trained from scratch on the embedded dataset. Inherits mmdet's stock RetinaNet model and runtime
# (the bases of mmdet's retinanet_r50_fpn_1x_coco.py) and changes only what a from-scratch,
# small-object, CPU setting needs.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/synthetic_detection.py',
    '../_base_/schedules/cpu_from_scratch.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=0.5,
        out_indices=(2, 4, 6),  # strides 8, 16, 32
        # from scratch: nothing frozen, BN statistics trained, no pretrained init
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=[16, 48, 160],
        out_channels=64,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        num_classes=8,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # objects are 8-48 px: anchors from 16 px at P3 instead of mmdet's 32 px
        anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(score_thr=0.05, max_per_img=100))
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
# MobileNetV2 computes its last 1x1 conv even when out_indices stop before it: for DDP
find_unused_parameters = True
