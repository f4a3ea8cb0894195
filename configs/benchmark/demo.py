# `make demo`: the embedded teacher and the baseline student, one seed.
work_root = 'work_dirs/demo'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name='student: RetinaNet MNv2-0.5 FPN-64',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
methods = []
seeds = [0]
input_shape = (3, 160, 160)
