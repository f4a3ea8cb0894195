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
CSL_DIR = 'configs/confidence_soft_label'
PSEUDO = '10% labels: + hard pseudo-labels of the 10%-teacher (thr 0.5)'
CSL = '10% labels: kd_det ConfidenceSoftLabel v2 + the unlabeled 90%'
CSL_ROUND2 = '10% labels: ConfidenceSoftLabel v2, round 2 (teacher: round-1 student)'
methods = [
    dict(name=PSEUDO, config=f'{CSL_DIR}/pseudo_label_retinanet_mnv2_800it_embedded_semi10.py'),
    dict(name=CSL, config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10.py'),
    # what the hard-sample weights (teacher reliability x student discrepancy) do
    dict(name='10% labels: ConfidenceSoftLabel v2 without hard-sample weights',
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10.py',
         cfg_options={'model.distiller.hard_weighting': False}, ablation_of=CSL),
    # the labeled/unlabeled balance: each unlabeled image's distillation losses x0.5 or x2
    # (SemiSupervisedDetectionDistill.unlabeled_weight; the default 1 counts both alike)
    dict(name='10% labels: ConfidenceSoftLabel v2, unlabeled images x0.5',
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10.py',
         cfg_options={'model.unlabeled_weight': 0.5}, ablation_of=CSL),
    dict(name='10% labels: ConfidenceSoftLabel v2, unlabeled images x2',
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10.py',
         cfg_options={'model.unlabeled_weight': 2.0}, ablation_of=CSL),
    # iterative: each round's student is the next round's teacher (same seed, teacher_from);
    # every round trains a new student for the same 800 iterations
    dict(name='10% labels: hard pseudo-labels, round 2 (teacher: round-1 student)',
         teacher_from=PSEUDO, gap_between=(),
         config=f'{CSL_DIR}/pseudo_label_retinanet_mnv2_800it_embedded_semi10_next_round.py'),
    dict(name=CSL_ROUND2, teacher_from=CSL, gap_between=(),
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10_next_round.py'),
    # mmdet's own semi-supervised method (a mean teacher on Faster R-CNN with the student's
    # backbone and FPN), same split and iterations; ~7x the time per iteration of the RetinaNet
    # rows here, so one seed
    dict(name='10% labels: mmdet SoftTeacher (Faster R-CNN MNv2-0.5 FPN-64)', role='student',
         seeds=[0],
         config=f'{CSL_DIR}/soft_teacher_faster-rcnn_mnv2-fpn64_800it_embedded_semi10.py'),
    # round 2 already pays less than round 1 on seed 0: round 3 on that seed only
    dict(name='10% labels: ConfidenceSoftLabel v2, round 3 (teacher: round-2 student)',
         teacher_from=CSL_ROUND2, gap_between=(), seeds=[0],
         config=f'{CSL_DIR}/csl_retinanet_mnv2_800it_embedded_semi10_next_round.py'),
]
paired_reference = PSEUDO
seeds = [0, 1, 2]
teacher_seed = 0
teacher_seeds = [0]
input_shape = (3, 160, 160)
