# mmrazor's channel-wise distillation (CWD) on the three CSPNeXt-PAFPN levels of the real-time
# pair, at its published detection setting (tau 1, loss weight 10 per level), with a 1x1
# connector per level (96 -> 128 channels), as on the RetinaNet pair.
_base_ = ['../_base_/distill/embedded_rtmdet_pair.py']

levels = [0, 1, 2]
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(neck=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(neck=dict(type='ModuleOutputs', source='neck')),
        connectors={
            f'neck{i}_s2t': dict(type='ConvModuleConnector', in_channel=96, out_channel=128,
                                 act_cfg=None)
            for i in levels
        },
        distill_losses={
            f'loss_cwd_neck{i}': dict(type='ChannelWiseDivergence', tau=1, loss_weight=10)
            for i in levels
        },
        loss_forward_mappings={
            f'loss_cwd_neck{i}': dict(
                preds_S=dict(from_student=True, recorder='neck', data_idx=i,
                             connector=f'neck{i}_s2t'),
                preds_T=dict(from_student=False, recorder='neck', data_idx=i))
            for i in levels
        }))
