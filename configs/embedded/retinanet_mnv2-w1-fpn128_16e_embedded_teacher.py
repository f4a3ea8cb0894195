# Teacher: the student's detector at full width (MobileNetV2-1.0, 128-channel FPN and head)
# trained twice as long (16 epochs vs 8), at half the student's learning rate (the wider head has
# no normalisation and diverged at 2e-3 from scratch). ResNet teachers barely learn from scratch
# on CPU-sized schedules here, so "bigger" comes from the family that does train (README,
# "Choosing the pair").
_base_ = './retinanet_mnv2-w05-fpn64_8e_embedded.py'

max_epochs = 16
model = dict(
    backbone=dict(widen_factor=1.0),
    neck=dict(in_channels=[32, 96, 320], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
