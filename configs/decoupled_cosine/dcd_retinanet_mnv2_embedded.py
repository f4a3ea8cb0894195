# kd_det's decoupled cosine distiller on the embedded pair: foreground cosine on FPN features,
# background KL on the classification head, teacher-better gate (see README.md here).
_base_ = ['../_base_/distill/embedded_pair.py']

model = dict(
    teacher_head='auto',  # the background KL and the gate need the teacher's predictions
    distiller=dict(
        type='DecoupledCosineDistiller',
        # x6 / x10 the distiller's defaults: at 2 / 1 the two terms ended training at ~0.3 and
        # ~0.003 next to a task loss of ~0.5 (background KL of near-zero probabilities is tiny)
        loss_fg_weight=6.0,
        loss_bg_weight=10.0,
        temperature=1.0,
        gate='hard',
        gate_level='object'))
