# mmrazor's PKD on all five FPN levels at its published RetinaNet setting (loss weight 6 per
# level). The student's 64-channel FPN is mapped to the teacher's 128 channels by a 1x1 conv per
# level, since PKD compares equal-shaped features.
_base_ = ['../_base_/distill/embedded_pair.py']

levels = [0, 1, 2, 3, 4]
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        connectors={
            f'fpn{i}_s2t': dict(type='ConvModuleConnector', in_channel=64, out_channel=128,
                                act_cfg=None)
            for i in levels
        },
        distill_losses={f'loss_pkd_fpn{i}': dict(type='PKDLoss', loss_weight=6) for i in levels},
        loss_forward_mappings={
            f'loss_pkd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i,
                             connector=f'fpn{i}_s2t'),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in levels
        }))
