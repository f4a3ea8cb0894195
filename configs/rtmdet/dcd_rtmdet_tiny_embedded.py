# kd_det's decoupled cosine distiller on the real-time pair (RTMDet-s -> RTMDet-tiny) at its
# defaults, exactly as on the RetinaNet pair: nothing here is specific to RTMDet.
_base_ = ['../_base_/distill/embedded_rtmdet_pair.py']

model = dict(teacher_head='auto', distiller=dict(type='DecoupledCosineDistiller'))
