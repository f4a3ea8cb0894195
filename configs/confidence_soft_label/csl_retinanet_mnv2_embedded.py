# kd_det's confidence-guided soft-label distiller on the embedded pair, fully supervised: the
# teacher's confidence makes the soft labels and picks the regions (see README.md here). The
# distiller's defaults are v2 (regions per anchor, confidence-biased spatial KL on every FPN
# level, geometric hard-sample weights, confidence-sharpened soft labels); v1:
# csl_retinanet_mnv2_embedded_v1.py.
_base_ = ['../_base_/distill/embedded_pair.py']

model = dict(
    teacher_head='auto',  # soft labels, boxes and confidences come from the teacher's head
    distiller=dict(type='ConfidenceSoftLabelDistiller', region_thr=0.5))
