# kd_det's decoupled cosine distiller (v2) on the embedded pair: foreground cosine on each
# object's assigned FPN level, background spatial-distribution KL on features and class logits,
# teacher-better object gate with a floor (see README.md here). Every weight is the distiller's
# default: nothing here is tuned to the embedded set.
_base_ = ['../_base_/distill/embedded_pair.py']

model = dict(
    teacher_head='auto',  # the background KL and the gate need the teacher's predictions
    distiller=dict(type='DecoupledCosineDistiller'))
