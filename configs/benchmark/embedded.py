# `make bench`: the embedded-dataset benchmark. Teacher, student alone, kd_det's distillers and
# mmrazor's feature-distillation losses at their published settings, all on the student's
# schedule, 3 seeds. Distillation runs use the seed-0 teacher.
work_root = 'work_dirs/benchmark/embedded'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128 (16e)',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name='student: RetinaNet MNv2-0.5 FPN-64 (8e)',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
methods = [
    dict(name='kd_det DecoupledCosine (gate on)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py'),
    dict(name='kd_det DecoupledCosine (gate off)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_nogate.py'),
    dict(name='mmrazor PKD (FPN)', config='configs/mmrazor_baselines/pkd_fpn_embedded.py'),
    dict(name='mmrazor CWD (FPN)', config='configs/mmrazor_baselines/cwd_fpn_embedded.py'),
    dict(name='mmrazor MGD (FPN)', config='configs/mmrazor_baselines/mgd_fpn_embedded.py'),
]
seeds = [0, 1, 2]
teacher_seed = 0
# the teacher row: one seed (16 epochs of the wider model cost as much as three student runs)
teacher_seeds = [0]
input_shape = (3, 160, 160)
