# COCO, semi-supervised: all of train2017 labeled plus the 123k images of unlabeled2017
# (annotations/image_info_unlabeled2017.json, images in unlabeled2017/), RetinaNet R101 -> R50.
# Every GPU batch holds 2 labeled + 2 unlabeled images, so on 8 GPUs the labeled stream sees 16
# images per step as in the supervised 2x schedule, for 180k steps (~ the 2x schedule's 176k).
# Unlabeled images get the distillation losses only. Not measured here (no GPU, no COCO).
_base_ = ['./csl_retinanet_r101_to_r50_coco.py']
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

model = dict(type='SemiSupervisedDetectionDistill')

batch_size = 4
source_ratio = [1, 1]  # labeled : unlabeled images per batch
unlabeled_dataset = dict(
    type='PartiallyLabeledCocoDataset',
    subset='unlabeled',
    labeled_fraction=0.0,  # every image of the file is unlabeled
    data_root=_base_.data_root,
    ann_file='annotations/image_info_unlabeled2017.json',
    data_prefix=dict(img='unlabeled2017/'),
    filter_cfg=dict(filter_empty_gt=False, min_size=32),
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    sampler=dict(_delete_=True, type='GroupMultiSourceSampler', batch_size=batch_size,
                 source_ratio=source_ratio),
    batch_sampler=None,
    dataset=dict(_delete_=True, type='ConcatDataset',
                 datasets=[_base_.train_dataloader.dataset, unlabeled_dataset]))

max_iters = 180000
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=20000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[120000, 160000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=20000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
