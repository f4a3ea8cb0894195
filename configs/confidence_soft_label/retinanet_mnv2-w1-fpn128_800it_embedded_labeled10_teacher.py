# The embedded teacher (MobileNetV2-1.0, FPN-128) trained on the labeled 10 % only: the teacher a
# user with 10 % labels actually has (issue #18). Same 800 iterations of batch 8 as the 10 %-label
# student rows, the teacher's learning rate.
_base_ = ['./retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py']

model = dict(
    backbone=dict(widen_factor=1.0),
    neck=dict(in_channels=[32, 96, 320], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
