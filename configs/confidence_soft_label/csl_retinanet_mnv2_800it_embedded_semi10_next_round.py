# Iterative semi-supervised distillation, next round: the teacher is the previous round's
# student (same network as the student: RetinaNet MobileNetV2-0.5 FPN-64), and a new student
# trains from scratch the same 800 iterations on the 10 % labels + the unlabeled 90 %
# (csl_retinanet_mnv2_800it_embedded_semi10.py). The teacher checkpoint may be the previous
# round's distillation checkpoint as it is: its student (architecture.*) is taken.
#   python tools/train.py \
#       configs/confidence_soft_label/csl_retinanet_mnv2_800it_embedded_semi10_next_round.py \
#       --cfg-options model.teacher_ckpt=work_dirs/<previous round>/iter_800.pth
_base_ = ['./csl_retinanet_mnv2_800it_embedded_semi10.py']

student_config = \
    'kd_det::confidence_soft_label/retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py'
model = dict(
    teacher=dict(_delete_=True, cfg_path=student_config),
    # where `python tools/train.py csl_retinanet_mnv2_800it_embedded_semi10.py` leaves round 1
    teacher_ckpt='work_dirs/csl_retinanet_mnv2_800it_embedded_semi10/iter_800.pth')
