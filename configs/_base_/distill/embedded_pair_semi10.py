# The embedded teacher -> student pair on 10 % labels: every batch of 8 mixes labeled images
# (task + distillation losses) and unlabeled ones (distillation only) at `source_ratio`, for the
# 800 iterations of the labeled-only baseline. Method configs set `model.distiller` (and, for
# the pseudo-label baseline, `model.pseudo_label_thr`).
_base_ = ['kd_det::confidence_soft_label/retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py']

teacher_config = 'kd_det::embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py'
teacher_ckpt = 'work_dirs/retinanet_mnv2-w1-fpn128_16e_embedded_teacher/epoch_16.pth'
source_ratio = [1, 1]  # labeled : unlabeled images per batch
batch_size = 8

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='SemiSupervisedDetectionDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path=teacher_config),
    teacher_ckpt=teacher_ckpt,
    teacher_head='auto')
find_unused_parameters = True

labeled_dataset = _base_.train_dataloader.dataset
unlabeled_dataset = dict(
    type='PartiallyLabeledCocoDataset',
    subset='unlabeled',
    labeled_fraction=_base_.labeled_fraction,
    split_seed=_base_.split_seed,
    data_root=_base_.data_root,
    metainfo=_base_.metainfo,
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img=''),
    filter_cfg=dict(filter_empty_gt=False, min_size=0),
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='MultiSourceSampler', batch_size=batch_size,
                 source_ratio=source_ratio),
    dataset=dict(_delete_=True, type='ConcatDataset',
                 datasets=[labeled_dataset, unlabeled_dataset]))
