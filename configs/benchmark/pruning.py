# `python tools/benchmark.py configs/benchmark/pruning.py --jobs 2`: pruning the embedded student
# (RetinaNet, MobileNetV2-0.5, FPN-64) to <= 50 % of its FLOPs, 3 seeds, every row with the same
# total training: the 8-epoch student (first row), then 4 more epochs from its checkpoint of the
# same seed (`init_from`), pruned or not. Params, FLOPs and latency of a pruned row are those of
# the physically smaller network the run writes (<run dir>/pruned/pruned.py + pruned.pth).
work_root = 'work_dirs/benchmark/pruning'
STUDENT_CONFIG = 'configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'
UNPRUNED = 'student: RetinaNet MNv2-0.5 FPN-64 (8e)'
# the 8-epoch student fills the 'teacher' slot: it trains first, for every seed, and the
# fine-tunes start from it (and the distilled one learns from it)
teacher = dict(name=UNPRUNED, config=STUDENT_CONFIG)
student = dict(name='+ 4e fine-tune, not pruned (reference)', init_from=UNPRUNED,
               config='configs/pruning/retinanet_mnv2-w05-fpn64_finetune4e_embedded.py')
methods = [
    dict(name='kd_det Fisher pruning to 50 % FLOPs (4e)', role='student', init_from=UNPRUNED,
         config='configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    dict(name='kd_det Fisher pruning to 50 % + DecoupledCosine from the unpruned (4e)',
         init_from=UNPRUNED, teacher_from=UNPRUNED, gap_between=(),
         config='configs/pruning/fisher_dcd_retinanet_mnv2-w05-fpn64_prune50_embedded.py'),
    # what the distillation alone gives, without pruning: the fair reference of the row above
    dict(name='+ 4e DecoupledCosine from the unpruned, not pruned', init_from=UNPRUNED,
         teacher_from=UNPRUNED, gap_between=(),
         config='configs/pruning/dcd_retinanet_mnv2-w05-fpn64_finetune4e_embedded.py'),
]
paired_reference = '+ 4e fine-tune, not pruned (reference)'
seeds = [0, 1, 2]
teacher_seeds = [0, 1, 2]
input_shape = (3, 160, 160)
