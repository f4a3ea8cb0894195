# The 4-epoch fine-tune (retinanet_mnv2-w05-fpn64_finetune4e_embedded.py) with the student
# distilled from its own unpruned 8-epoch model by kd_det's DecoupledCosineDistiller (defaults).
# Not pruned: the reference of fisher_dcd_retinanet_mnv2-w05-fpn64_prune50_embedded.py, which
# adds the pruning hook; together they separate what distillation and pruning each do.
#   python tools/train.py \
#       configs/pruning/dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py --cfg-options \
#       model.teacher_ckpt=STUDENT_8E model.architecture.init_cfg.checkpoint=STUDENT_8E
_base_ = './retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'

# where `python tools/train.py <the student config>` leaves the 8-epoch student by default
unpruned_ckpt = 'work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth'
load_from = None  # the student starts from init_cfg below; the teacher from teacher_ckpt
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DetectionDistill',
    architecture=dict(_base_.model, init_cfg=dict(type='Pretrained', checkpoint=unpruned_ckpt)),
    teacher=_base_.model,  # the same network, unpruned
    teacher_ckpt=unpruned_ckpt,
    teacher_head='auto',  # the logit KL and the gate need the teacher's predictions
    distiller=dict(type='DecoupledCosineDistiller'))
# the teacher's parameters are frozen and DDP must not wait for their gradients
find_unused_parameters = True
