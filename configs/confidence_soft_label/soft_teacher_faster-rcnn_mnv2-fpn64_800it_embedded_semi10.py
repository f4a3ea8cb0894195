# Anchor row: mmdet's own SoftTeacher (end-to-end mean teacher, Xu et al. 2021) on our 10 %
# labeled / 90 % unlabeled split, for 800 iterations of batch 8 (4 labeled + 4 unlabeled), like
# the other semi-supervised rows. The detector is Faster R-CNN (SoftTeacher needs an RPN + RoI
# head) on the student's MobileNetV2-0.5 backbone and 64-channel FPN. Everything else is the
# stock config; changed, and why:
#   - backbone: MobileNetV2-0.5 from scratch (nothing frozen, BN trained, no pretrained init:
#     there are no weights to load) instead of the frozen caffe ResNet-50; the ImageNet RGB
#     normalisation of our rows instead of the caffe BGR one.
#   - RPN anchors: scales=[2] on strides 8..128 (16 px at P3), the smallest anchor of the
#     RetinaNet student (octave_base_scale=2): our objects are 8-48 px on 160 px images.
#     RoI head: strides 8..64 and 256-d FC layers instead of 1024-d (a head the size of a
#     MobileNet detector's, not of a ResNet-50 one's).
#   - data: PartiallyLabeledCocoDataset's split (labeled_fraction=0.1, split_seed=0); every
#     branch resized to 160x160 (stock RandomResize scales are for COCO images); the weak/strong
#     augmentations are stock.
#   - schedule: AdamW lr 2e-3, warm-up + cosine over 800 iterations (cpu_from_scratch), instead
#     of SGD 0.01 with steps at 120k/160k of 180k.
#   - MeanTeacherHook: momentum 0.01 instead of 0.001 (an EMA horizon of ~100 of 800
#     iterations; with 0.001 the teacher would still be 45 % random init at the end), and
#     skip_buffer=False: stock BN is frozen, so skipping BN statistics is harmless there, but a
#     from-scratch teacher would keep its initial running mean 0 / var 1 forever.
#   - evaluation: ValLoop on the teacher (semi_test_cfg.predict_on='teacher', what SoftTeacher
#     reports) with plain coco/ metric keys; `--cfg-options val_cfg.type=TeacherStudentValLoop`
#     adds the student (teacher/ and student/ keys).
#   python tools/train.py \
#       configs/confidence_soft_label/soft_teacher_faster-rcnn_mnv2-fpn64_800it_embedded_semi10.py
_base_ = ['mmdet::soft_teacher/soft-teacher_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py']
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

data_root = 'data/synthetic/'
metainfo = dict(
    classes=('red_disc', 'orange_disc', 'blue_square', 'blue_striped_square',
             'green_triangle', 'green_diamond', 'purple_ring', 'purple_dotted_ring'))
img_scale = (160, 160)
labeled_fraction = 0.1
split_seed = 0
max_iters = 800
batch_size = 8
source_ratio = [1, 1]  # labeled : unlabeled images per batch

data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
model = dict(
    detector=dict(
        data_preprocessor=data_preprocessor,
        backbone=dict(
            _delete_=True,
            type='MobileNetV2',
            widen_factor=0.5,
            out_indices=(2, 4, 6),  # strides 8, 16, 32
            frozen_stages=-1,
            norm_eval=False,
            init_cfg=None),
        neck=dict(
            in_channels=[16, 48, 160],
            out_channels=64,
            start_level=0,
            add_extra_convs='on_input',
            num_outs=5),
        rpn_head=dict(
            in_channels=64,
            feat_channels=64,
            anchor_generator=dict(scales=[2], strides=[8, 16, 32, 64, 128])),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=64, featmap_strides=[8, 16, 32, 64]),
            bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=8))),
    data_preprocessor=dict(data_preprocessor=data_preprocessor),
    semi_test_cfg=dict(predict_on='teacher'))
# MobileNetV2 computes its last 1x1 conv even when out_indices stop before it: for DDP
find_unused_parameters = True

sup_pipeline = _base_.sup_pipeline
sup_pipeline[2] = dict(type='Resize', scale=img_scale, keep_ratio=True)
weak_pipeline = _base_.weak_pipeline
weak_pipeline[0] = dict(type='Resize', scale=img_scale, keep_ratio=True)
strong_pipeline = _base_.strong_pipeline
strong_pipeline[0] = dict(type='Resize', scale=img_scale, keep_ratio=True)
unsup_pipeline = _base_.unsup_pipeline
unsup_pipeline[2].unsup_teacher = weak_pipeline
unsup_pipeline[2].unsup_student = strong_pipeline

split = dict(
    type='PartiallyLabeledCocoDataset',
    labeled_fraction=labeled_fraction,
    split_seed=split_seed,
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img=''),
    filter_cfg=dict(filter_empty_gt=False, min_size=0))
labeled_dataset = dict(split, subset='labeled', pipeline=sup_pipeline)
unlabeled_dataset = dict(split, subset='unlabeled', pipeline=unsup_pipeline)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    sampler=dict(batch_size=batch_size, source_ratio=source_ratio),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))

test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img=''),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min_ratio=0.05),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
custom_hooks = [dict(type='MeanTeacherHook', momentum=0.01, skip_buffer=False)]
