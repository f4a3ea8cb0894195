# COCO: RetinaNet R101 (2x) -> RetinaNet R50 (2x) with the decoupled cosine distiller.
# Not measured here (no GPU). Set model.teacher_ckpt to mmdet's released R101 weights or your own.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['kd_det'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DetectionDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth',
    distiller=dict(type='DecoupledCosineDistiller'))  # v2 defaults
find_unused_parameters = True
# distillation diverges more easily than plain training at large learning rates (users report divergence at lr 0.02 where 0.001 worked)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
