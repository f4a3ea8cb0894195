# mmrazor's channel-wise distillation (CWD) on all five FPN levels at its published RetinaNet
# setting (tau 1, loss weight 10 per level), with a 1x1 connector per level (64 -> 128 channels).
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
        distill_losses={
            f'loss_cwd_fpn{i}': dict(type='ChannelWiseDivergence', tau=1, loss_weight=10)
            for i in levels
        },
        loss_forward_mappings={
            f'loss_cwd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i,
                             connector=f'fpn{i}_s2t'),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in levels
        }))
