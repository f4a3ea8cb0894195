# Semi-supervised distillation in the real setting (issue #18): the teacher is trained on the
# same 10 % labels as the student (PartiallyLabeledCocoDataset, labeled_fraction=0.1,
# split_seed=0), never on the labels of the other 90 %.
#   python tools/benchmark.py configs/benchmark/semi_supervised.py --jobs 2
# Every row runs 800 iterations of batch 8. Rows: the student on the labeled 10 % alone; + hard
# pseudo-labels of the 10 %-teacher (score >= 0.5) on the unlabeled 90 %; kd_det's
# ConfidenceSoftLabel (v2 defaults) with the unlabeled 90 % (distillation losses only there).
# Mixed batches are 4 labeled + 4 unlabeled images. The rows with a teacher that saw all labels
# are in configs/benchmark/confidence_soft_label.py (a separate block in docs/benchmarks.md).
work_root = 'work_dirs/benchmark/semi_supervised'
teacher = dict(name='teacher on 10% labels: RetinaNet MNv2-1.0 FPN-128 (800 it)',
               config='configs/confidence_soft_label/'
               'retinanet_mnv2-w1-fpn128_800it_embedded_labeled10_teacher.py')
student = dict(name='10% labels: student alone (800 it)',
               config='configs/confidence_soft_label/'
               'retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py')
methods = [
    dict(name='10% labels: + hard pseudo-labels of the 10%-teacher (thr 0.5)',
         config='configs/confidence_soft_label/'
         'pseudo_label_retinanet_mnv2_800it_embedded_semi10.py'),
    dict(name='10% labels: kd_det ConfidenceSoftLabel v2 + the unlabeled 90%',
         config='configs/confidence_soft_label/csl_retinanet_mnv2_800it_embedded_semi10.py'),
]
paired_reference = '10% labels: + hard pseudo-labels of the 10%-teacher (thr 0.5)'
seeds = [0, 1, 2]
teacher_seed = 0
teacher_seeds = [0]
input_shape = (3, 160, 160)
