# The confidence-guided soft-label distiller with 10 % labels: labeled images get the student's
# task loss and the distillation losses, the unlabeled 90 % the distillation losses only. The
# distiller is v2, as in csl_retinanet_mnv2_embedded.py.
_base_ = ['../_base_/distill/embedded_pair_semi10.py']

model = dict(distiller=dict(type='ConfidenceSoftLabelDistiller', region_thr=0.5))
