# Progressive Fisher pruning to 50 % of the FLOPs (../_base_/pruning/fisher_prune50.py)
# while the student is distilled from its own unpruned 8-epoch model
# (dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py). The Fisher importance is measured on the
# whole training loss, task + distillation, so channels are also kept for what the student needs
# to imitate the teacher.
#   python tools/train.py \
#       configs/pruning/fisher_dcd_retinanet_mnv2-w05-fpn64_prune50_embedded.py --cfg-options \
#       model.teacher_ckpt=STUDENT_8E model.architecture.init_cfg.checkpoint=STUDENT_8E
_base_ = ['./dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py',
          '../_base_/pruning/fisher_prune50.py']
