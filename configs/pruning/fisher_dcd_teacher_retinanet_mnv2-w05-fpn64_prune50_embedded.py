# Progressive Fisher pruning to 50 % of the FLOPs (../_base_/pruning/fisher_prune50.py)
# while the student is distilled from the embedded teacher (RetinaNet MobileNetV2-1.0 FPN-128;
# dcd_teacher_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py): prune and distil in one 4-epoch
# fine-tune.
#   python tools/train.py \
#       configs/pruning/fisher_dcd_teacher_retinanet_mnv2-w05-fpn64_prune50_embedded.py \
#       --cfg-options model.teacher_ckpt=TEACHER model.architecture.init_cfg.checkpoint=STUDENT_8E
_base_ = ['./dcd_teacher_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py',
          '../_base_/pruning/fisher_prune50.py']
