# Neck comparison baseline: the embedded student with mmdet's PAFPN (64 channels, P3-P7) in place
# of its FPN; same backbone, head, data and schedule.
_base_ = '../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'

model = dict(neck=dict(type='PAFPN'))
