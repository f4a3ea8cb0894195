# kd_det's decoupled cosine distiller on the embedded pair: foreground cosine on FPN features,
# background KL on the classification head, teacher-better gate (see README.md here).
_base_ = ['../_base_/distill/embedded_pair.py']

model = dict(
    teacher_head='auto',  # the background KL and the gate need the teacher's predictions
    distiller=dict(
        type='DecoupledCosineDistiller',
        loss_fg_weight=2.0,
        loss_bg_weight=1.0,
        temperature=1.0,
        gate='hard'))
