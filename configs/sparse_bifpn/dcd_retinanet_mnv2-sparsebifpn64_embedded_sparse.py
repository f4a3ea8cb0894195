# Step 1 with distillation: the sparsity-trained SparseBiFPN student (its config, hook, data and
# schedule) distilled from the embedded teacher with kd_det's decoupled cosine distiller, wired
# like configs/_base_/distill/embedded_pair.py. The hook finds the student inside the algorithm.
_base_ = ['./retinanet_mnv2-w05-sparsebifpn64_8e_embedded_sparse.py',
          '../_base_/distill/decoupled_cosine_v1.py']

teacher_config = 'kd_det::embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py'
teacher_ckpt = 'work_dirs/retinanet_mnv2-w1-fpn128_16e_embedded_teacher/epoch_16.pth'

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DetectionDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path=teacher_config),
    teacher_ckpt=teacher_ckpt,
    teacher_head='auto',  # the background KL and the gate need the teacher's predictions
    # v1 of the distiller, as the sparse benchmark was measured
    distiller=_base_.decoupled_cosine_v1)
find_unused_parameters = True
