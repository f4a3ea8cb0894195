# kd_det's confidence-guided soft-label distiller on the real-time pair (RTMDet-s -> RTMDet-tiny),
# with the region threshold of the RetinaNet pair: nothing here is specific to RTMDet.
_base_ = ['../_base_/distill/embedded_rtmdet_pair.py']

model = dict(
    teacher_head='auto',
    distiller=dict(type='ConfidenceSoftLabelDistiller', region_thr=0.5))
