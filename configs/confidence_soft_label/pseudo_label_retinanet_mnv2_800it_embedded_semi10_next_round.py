# Hard pseudo-labels, next round: the previous round's student (RetinaNet MobileNetV2-0.5
# FPN-64) labels the unlabeled 90 % for a new student trained from scratch, as in
# pseudo_label_retinanet_mnv2_800it_embedded_semi10.py (classic iterative self-training).
#   python tools/train.py configs/confidence_soft_label/\
#   pseudo_label_retinanet_mnv2_800it_embedded_semi10_next_round.py --cfg-options \
#        model.teacher_ckpt=work_dirs/<previous round>/iter_800.pth
_base_ = ['./pseudo_label_retinanet_mnv2_800it_embedded_semi10.py']

student_config = \
    'kd_det::confidence_soft_label/retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py'
model = dict(
    teacher=dict(_delete_=True, cfg_path=student_config),
    # where `python tools/train.py pseudo_label_..._semi10.py` leaves round 1
    teacher_ckpt='work_dirs/pseudo_label_retinanet_mnv2_800it_embedded_semi10/iter_800.pth')
