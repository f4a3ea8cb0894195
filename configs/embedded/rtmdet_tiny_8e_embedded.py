# Real-time student: mmdet's stock RTMDet-tiny (CSPNeXt, CSPNeXt-PAFPN, RTMDetSepBNHead, strides
# 8-32), trained from scratch on the embedded dataset. Only what training from scratch on CPU at
# 160 px needs is changed here; the model, optimizer type, weight decay and EMA are mmdet's:
# - no ImageNet backbone checkpoint (`init_cfg=None`), 8 classes;
# - the embedded data at 160 px with flips only: Mosaic/MixUp at 640 px are a 300-epoch recipe
#   and cost more CPU time per image than the detector at this size;
# - 8 epochs (800 iterations at batch 8) with the same warm-up + cosine schedule and learning
#   rate as every other from-scratch student here (mmdet's 0.004 is for batch 256 and 300 epochs);
# - the stage-2 pipeline switch (at epoch 280) is dropped with the 640 px pipelines.
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py']
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

data_root = 'data/synthetic/'
metainfo = dict(
    classes=('red_disc', 'orange_disc', 'blue_square', 'blue_striped_square',
             'green_triangle', 'green_diamond', 'purple_ring', 'purple_dotted_ring'))
img_scale = (160, 160)

model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes=8),
    test_cfg=dict(score_thr=0.05, nms_pre=1000, max_per_img=100))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
dataset = dict(data_root=data_root, metainfo=metainfo, data_prefix=dict(img=''))
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    pin_memory=False,
    dataset=dict(**dataset, ann_file='annotations/instances_train.json',
                 filter_cfg=dict(filter_empty_gt=False, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(**dataset, ann_file='annotations/instances_val.json', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json',
                     proposal_nums=(100, 1, 10))
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs, dynamic_intervals=None)
optim_wrapper = dict(optimizer=dict(lr=2e-3), clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
