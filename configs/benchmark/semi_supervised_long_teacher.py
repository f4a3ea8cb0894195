# Semi-supervised distillation (issue #18) with a stronger 10 %-label teacher: the same teacher
# network on the same labeled 10 % (split_seed=0), trained 2400 iterations instead of 800.
# Student rows as in semi_supervised.py (800 iterations of batch 8, 4 labeled + 4 unlabeled
# images per mixed batch), so the two specs differ only in how long the teacher trained. Also a
# second round (the round-1 student teaches) and a control: the student alone as long as the
# teacher.
#   python tools/benchmark.py configs/benchmark/semi_supervised_long_teacher.py --jobs 2
work_root = 'work_dirs/benchmark/semi_supervised_long_teacher'
CSL_DIR = 'configs/confidence_soft_label'
teacher = dict(name='teacher on 10% labels: RetinaNet MNv2-1.0 FPN-128 (2400 it)',
               config=f'{CSL_DIR}/retinanet_mnv2-w1-fpn128_2400it_embedded_labeled10_teacher.py')
student = dict(name='10% labels: student alone (800 it)',
               config=f'{CSL_DIR}/retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py')
PSEUDO = '10% labels: + hard pseudo-labels of the 2400-it 10%-teacher (thr 0.5)'
CSL = '10% labels: kd_det ConfidenceSoftLabel v2 + the unlabeled 90%, 2400-it teacher'
methods = [
    dict(name=PSEUDO, config=f'{CSL_DIR}/pseudo_label_retinanet_mnv2_800it_embedded_semi10.py'),
    dict(name=CSL, config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10.py'),
    # iterative: the round-1 student (same seed) teaches a new student for 800 iterations
    dict(name='10% labels: ConfidenceSoftLabel v2, round 2 (teacher: round-1 student)',
         teacher_from=CSL, gap_between=(),
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10_next_round.py'),
    # control: is it the teacher, or would the student gain as much from the teacher's longer
    # schedule? The student alone on the labeled 10 % for 2400 iterations
    dict(name='10% labels: student alone, 2400 it', role='student',
         config=f'{CSL_DIR}/retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py',
         cfg_options={'train_cfg.max_iters': 2400, 'train_cfg.val_interval': 2400,
                      'param_scheduler.1.end': 2400,
                      'default_hooks.checkpoint.interval': 2400}),
]
paired_reference = PSEUDO
seeds = [0, 1, 2]
teacher_seed = 0
teacher_seeds = [0]
input_shape = (3, 160, 160)
