# The 4-epoch fine-tune of the embedded student distilled from the embedded teacher (RetinaNet
# MobileNetV2-1.0 FPN-128, configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py) by
# kd_det's DecoupledCosineDistiller (defaults). Not pruned: the reference of
# fisher_dcd_teacher_retinanet_mnv2-w05-fpn64_prune50_embedded.py, which adds the pruning hook.
#   python tools/train.py \
#       configs/pruning/dcd_teacher_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py \
#       --cfg-options model.teacher_ckpt=TEACHER model.architecture.init_cfg.checkpoint=STUDENT_8E
_base_ = './dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'

teacher_config = 'kd_det::embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py'
model = dict(
    teacher=dict(_delete_=True, cfg_path=teacher_config),
    # where `python tools/train.py <teacher config>` leaves the teacher by default
    teacher_ckpt='work_dirs/retinanet_mnv2-w1-fpn128_16e_embedded_teacher/epoch_16.pth')
