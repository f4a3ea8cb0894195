# The real-time pair (issue #17): RTMDet-tiny alone, with each kd_det distiller at its defaults
# and with mmrazor's CWD and PKD on the neck, taught by RTMDet-s (seed 0, 16 epochs), paired by
# seed with mmrazor's CWD. Every config inherits mmdet::rtmdet/... . 5 seeds; PKD, which ended
# at the student's level on seeds 0-2, has those 3.
#   python tools/benchmark.py configs/benchmark/rtmdet.py --jobs 2
work_root = 'work_dirs/benchmark/rtmdet'
teacher = dict(name='teacher: RTMDet-s (16e)',
               config='configs/embedded/rtmdet_s_16e_embedded_teacher.py')
student = dict(name='student: RTMDet-tiny (8e)',
               config='configs/embedded/rtmdet_tiny_8e_embedded.py')
paired_reference = 'mmrazor CWD (neck)'
methods = [
    dict(name='kd_det DecoupledCosine', config='configs/rtmdet/dcd_rtmdet_tiny_embedded.py'),
    dict(name='kd_det ConfidenceSoftLabel', config='configs/rtmdet/csl_rtmdet_tiny_embedded.py'),
    dict(name='mmrazor CWD (neck)', config='configs/rtmdet/cwd_neck_rtmdet_tiny_embedded.py'),
    dict(name='mmrazor PKD (neck)', config='configs/rtmdet/pkd_neck_rtmdet_tiny_embedded.py',
         seeds=[0, 1, 2]),
]
seeds = [0, 1, 2, 3, 4]
teacher_seed = 0
teacher_seeds = [0]
input_shape = (3, 160, 160)
