# `python tools/benchmark.py configs/benchmark/pruning.py --jobs 2`: pruning the embedded student
# (RetinaNet, MobileNetV2-0.5, FPN-64) to <= 50 % of its FLOPs, 3 seeds. Every row below the
# student has the same total training: the 8-epoch student, then 4 more epochs from its
# checkpoint of the same seed (`init_from`), pruned or not, distilled or not; each pruned row has
# its unpruned twin with the same 4 epochs. Params, FLOPs and latency of a pruned row are those of
# the physically smaller network its run writes (<run dir>/pruned/pruned.py + pruned.pth).
work_root = 'work_dirs/benchmark/pruning'
STUDENT = 'student: RetinaNet MNv2-0.5 FPN-64 (8e)'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128 (16e)',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name=STUDENT, config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
REFERENCE = '+ 4e fine-tune, not pruned (reference)'
FISHER = 'kd_det Fisher pruning to 50 % FLOPs (4e)'
FISHER_DCD_TEACHER = 'kd_det Fisher pruning to 50 % + DecoupledCosine from the teacher (4e)'
CUBIC_200 = {'custom_hooks.0.schedule': 'cubic', 'custom_hooks.0.end': 200}
methods = [
    dict(name=REFERENCE, role='student', init_from=STUDENT,
         config='configs/pruning/retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'),
    dict(name=FISHER, role='student', init_from=STUDENT,
         config='configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    # the first schedule tried: cubic, target reached at iteration 200 (one seed)
    dict(name='kd_det Fisher pruning, cubic schedule to iteration 200', role='student',
         init_from=STUDENT, seeds=[0], ablation_of=FISHER, cfg_options=CUBIC_200,
         config='configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    # the anchor: mmrazor's GroupFisher on the same window (linear to 50 % at iteration 250)
    dict(name='mmrazor GroupFisher pruning to 50 % FLOPs (4e)', role='student', init_from=STUDENT,
         config='configs/pruning/group_fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    # distilled from the student's own unpruned 8-epoch model (teacher_from, same seed), not
    # pruned: one seed, that teacher is weaker than what the fine-tune reaches and holds the
    # student back (configs/pruning/fisher_dcd_retinanet_...py adds pruning to it)
    dict(name='+ 4e DecoupledCosine from the unpruned, not pruned', init_from=STUDENT,
         teacher_from=STUDENT, gap_between=(), seeds=[0],
         config='configs/pruning/dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'),
    # distilled from the embedded teacher during the fine-tune: one seed (on it, distillation
    # from the 45-mAP teacher trails the plain fine-tune, pruned or not)
    dict(name=FISHER_DCD_TEACHER, init_from=STUDENT, gap_between=(), seeds=[0],
         config='configs/pruning/fisher_dcd_teacher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    dict(name='kd_det Fisher + DecoupledCosine from the teacher, cubic schedule to iteration 200',
         init_from=STUDENT, gap_between=(), seeds=[0], ablation_of=FISHER_DCD_TEACHER,
         cfg_options=CUBIC_200,
         config='configs/pruning/fisher_dcd_teacher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    dict(name='+ 4e DecoupledCosine from the teacher, not pruned', init_from=STUDENT,
         gap_between=(), seeds=[0],
         config='configs/pruning/dcd_teacher_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'),
]
paired_reference = REFERENCE
seeds = [0, 1, 2]
teacher_seed = 0
teacher_seeds = [0]
input_shape = (3, 160, 160)
