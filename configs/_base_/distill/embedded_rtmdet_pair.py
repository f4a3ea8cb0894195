# The real-time pair (RTMDet-s teaches RTMDet-tiny), wired for distillation like
# embedded_pair.py: method configs inherit this and set `model.distiller` (and `model.teacher_head`
# when they need the teacher's predictions). Data, schedule, EMA and runtime are the student's.
_base_ = ['kd_det::embedded/rtmdet_tiny_8e_embedded.py']

teacher_config = 'kd_det::embedded/rtmdet_s_16e_embedded_teacher.py'
# where `python tools/train.py <teacher config>` leaves the teacher by default
teacher_ckpt = 'work_dirs/rtmdet_s_16e_embedded_teacher/epoch_16.pth'

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DetectionDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path=teacher_config),
    teacher_ckpt=teacher_ckpt,
    # mmrazor's feature losses need only backbone + neck of the teacher
    teacher_head=None)
# the teacher's parameters are frozen and DDP must not wait for their gradients
find_unused_parameters = True
