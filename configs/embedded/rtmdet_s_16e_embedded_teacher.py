# Teacher for the real-time student: the same detector at mmdet's RTMDet-s size (deepen 0.33,
# widen 0.5, 128-channel neck and head) trained twice as long as the student (16 epochs vs 8),
# as the RetinaNet teacher here is. Everything else is the student's config.
_base_ = './rtmdet_tiny_8e_embedded.py'

model = dict(
    backbone=dict(deepen_factor=0.33, widen_factor=0.5),
    neck=dict(in_channels=[128, 256, 512], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
