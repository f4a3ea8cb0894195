# The confidence-guided soft-label distiller with 10 % labels: labeled images get the student's
# task loss and the distillation losses, the unlabeled 90 % the distillation losses only.
_base_ = ['../_base_/distill/embedded_pair_semi10.py']

model = dict(
    distiller=dict(
        type='ConfidenceSoftLabelDistiller',
        loss_cls_weight=1.0,
        loss_box_weight=1.0,
        loss_feat_weight=1.0,
        region='threshold',
        region_thr=0.5,
        hard_weighting=True))
