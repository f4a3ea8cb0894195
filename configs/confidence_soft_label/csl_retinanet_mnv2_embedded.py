# kd_det's confidence-guided soft-label distiller on the embedded pair, fully supervised: the
# teacher's confidence makes the soft labels and picks the regions (see README.md here).
_base_ = ['../_base_/distill/embedded_pair.py']

model = dict(
    teacher_head='auto',  # soft labels, boxes and confidences come from the teacher's head
    distiller=dict(
        type='ConfidenceSoftLabelDistiller',
        loss_cls_weight=1.0,
        loss_box_weight=1.0,
        loss_feat_weight=1.0,
        region='threshold',
        region_thr=0.5,
        hard_weighting=True))
