# Baseline: the embedded student trained on the labeled 10 % of the training images only, for
# 800 iterations of batch 8 (the same number of steps as the 8-epoch supervised student, so
# every 10 %-label method trains as long). The split is PartiallyLabeledCocoDataset's
# (labeled_fraction, split_seed), the same one the semi-supervised configs use.
_base_ = ['../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py']
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

labeled_fraction = 0.1
split_seed = 0
max_iters = 800

train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='PartiallyLabeledCocoDataset',
        subset='labeled',
        labeled_fraction=labeled_fraction,
        split_seed=split_seed))

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min_ratio=0.05),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
