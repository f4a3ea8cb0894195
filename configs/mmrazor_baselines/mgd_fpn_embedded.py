# mmrazor's masked generative distillation (MGD) on all five FPN levels at its published
# RetinaNet setting (alpha 2e-5, lambda 0.65). MGD's generator connector also maps the student's
# 64 channels to the teacher's 128.
_base_ = ['../_base_/distill/embedded_pair.py']

levels = [0, 1, 2, 3, 4]
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        connectors={
            f'fpn{i}_mgd': dict(type='MGDConnector', student_channels=64, teacher_channels=128,
                                lambda_mgd=0.65)
            for i in levels
        },
        distill_losses={
            f'loss_mgd_fpn{i}': dict(type='MGDLoss', alpha_mgd=0.00002)
            for i in levels
        },
        loss_forward_mappings={
            f'loss_mgd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i,
                             connector=f'fpn{i}_mgd'),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in levels
        }))
