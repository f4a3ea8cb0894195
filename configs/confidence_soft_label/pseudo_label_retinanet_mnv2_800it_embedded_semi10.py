# Baseline: plain hard pseudo-labels with 10 % labels. The frozen teacher's detections with
# score >= 0.5 become the GT of the unlabeled images (same batches and schedule as the
# distiller's semi-supervised config); no distillation loss.
_base_ = ['../_base_/distill/embedded_pair_semi10.py']

model = dict(
    pseudo_label_thr=0.5,
    distiller=dict(type='ConfigurableDistiller'))
