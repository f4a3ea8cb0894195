# `make bench`: the embedded-dataset benchmark. Teacher, student alone, kd_det's distillers and
# mmrazor's feature-distillation losses at their published settings, all on the student's
# schedule, 3 seeds. Distillation runs use the seed-0 teacher.
work_root = 'work_dirs/benchmark/embedded'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128 (16e)',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name='student: RetinaNet MNv2-0.5 FPN-64 (8e)',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
# v1 of the decoupled cosine distiller, as these rows were measured (v2: distillers_v2.py)
DCD = 'configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_v1.py'
# v1's own default weights (its embedded config raises them to fg x6, bg x10)
DEFAULT_WEIGHTS = {'model.distiller.loss_fg_weight': 2.0, 'model.distiller.loss_bg_weight': 1.0}
methods = [
    dict(name='kd_det DecoupledCosine (gate per object)', config=DCD),
    dict(name='kd_det DecoupledCosine (gate off)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_nogate.py'),
    dict(name='mmrazor PKD (FPN)', config='configs/mmrazor_baselines/pkd_fpn_embedded.py'),
    dict(name='mmrazor CWD (FPN)', config='configs/mmrazor_baselines/cwd_fpn_embedded.py'),
    dict(name='mmrazor MGD (FPN)', config='configs/mmrazor_baselines/mgd_fpn_embedded.py'),
    # ablations and the weight search, seed 0 only
    dict(name='kd_det DecoupledCosine (gate per location)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_location_gate.py',
         seeds=[0]),
    dict(name='kd_det DecoupledCosine (gate per object, fg x15 bg x30)', config=DCD,
         cfg_options={'model.distiller.loss_fg_weight': 15.0,
                      'model.distiller.loss_bg_weight': 30.0}, seeds=[0]),
    dict(name='kd_det DecoupledCosine (gate per object, fg x2 bg x1)', config=DCD,
         cfg_options=DEFAULT_WEIGHTS, seeds=[0]),
    dict(name='kd_det DecoupledCosine (gate off, fg x2 bg x1)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_nogate.py',
         cfg_options=DEFAULT_WEIGHTS, seeds=[0]),
    dict(name='kd_det DecoupledCosine (gate per location, fg x2 bg x1)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_location_gate.py',
         cfg_options=DEFAULT_WEIGHTS, seeds=[0]),
]
seeds = [0, 1, 2]
teacher_seed = 0
# the teacher row: one seed (16 epochs of the wider model cost as much as three student runs)
teacher_seeds = [0]
input_shape = (3, 160, 160)
