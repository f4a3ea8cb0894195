# Benchmark of the confidence-guided soft-label distiller (issue #5) on the embedded dataset,
# 3 seeds; distillation runs use the seed-0 teacher.
#   python tools/benchmark.py configs/benchmark/confidence_soft_label.py --jobs 2
# (a) supervised, 100 % labels, the 8-epoch student schedule: student alone, this distiller, the
#     decoupled cosine distiller and mmrazor's PKD/CWD/MGD (the best of them is "mmrazor's best").
# (b) 10 % labels (PartiallyLabeledCocoDataset, labeled_fraction=0.1, split_seed=0), 800
#     iterations of batch 8 for every row (as many steps as the 8-epoch student): the student on
#     the labeled 10 % only; + hard pseudo-labels of the teacher (score >= 0.5) on the unlabeled
#     90 %; this distiller with the unlabeled 90 % (distillation losses only there). Mixed
#     batches are 4 labeled + 4 unlabeled images. The teacher is the supervised one of (a): it
#     has seen the labels of all training images; the 90 % are unlabeled for the student only.
#
# Rows (a) other than this distiller are the embedded benchmark's runs under the same names;
# to reuse finished runs instead of retraining them, link them here first, e.g.
#   mkdir -p work_dirs/benchmark/confidence_soft_label && for d in work_dirs/benchmark/embedded/*/;
#   do ln -sfn "$PWD/$d" work_dirs/benchmark/confidence_soft_label/; done
# The (b) rows are iteration-based: `--epochs` does not apply to them (use --only to leave them
# out of a quick epoch-based check).
# The rows of this spec were measured with v1 of both kd_det distillers (before their v2, see
# distillers_v2.py), so they run v1: the *_v1.py configs, and v1's options for the semi row.
CSL_V1 = {'model.distiller.region_unit': 'cell',
          'model.distiller.feat_loss': 'standardized_region',
          'model.distiller.loss_feat_weight': 1.0,
          'model.distiller.weight_norm': 'mean_clamp',
          'model.distiller.label_sharpening': 0.0}
work_root = 'work_dirs/benchmark/confidence_soft_label'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128 (16e)',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name='student: RetinaNet MNv2-0.5 FPN-64 (8e)',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
labeled_fraction = 0.1
# (b) rows report the share of the gap between the 10 %-label student and the 100 %-label one
# that they recover (target: at least half)
labels_gap = ('10% labels: student alone', student['name'])
methods = [
    # (a) supervised
    dict(name='kd_det ConfidenceSoftLabel',
         config='configs/confidence_soft_label/csl_retinanet_mnv2_embedded_v1.py'),
    dict(name='kd_det DecoupledCosine (gate per object)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_v1.py'),
    dict(name='mmrazor PKD (FPN)', config='configs/mmrazor_baselines/pkd_fpn_embedded.py'),
    dict(name='mmrazor CWD (FPN)', config='configs/mmrazor_baselines/cwd_fpn_embedded.py'),
    dict(name='mmrazor MGD (FPN)', config='configs/mmrazor_baselines/mgd_fpn_embedded.py'),
    # (b) 10 % labels
    dict(name='10% labels: student alone', role='student',
         config='configs/confidence_soft_label/'
         'retinanet_mnv2-w05-fpn64_800it_embedded_labeled10.py',
         cfg_options={'train_dataloader.dataset.labeled_fraction': labeled_fraction}),
    dict(name='10% labels: + hard pseudo-labels (thr 0.5) on the 90%',
         config='configs/confidence_soft_label/'
         'pseudo_label_retinanet_mnv2_800it_embedded_semi10.py',
         cfg_options={'train_dataloader.dataset.datasets.0.labeled_fraction': labeled_fraction,
                      'train_dataloader.dataset.datasets.1.labeled_fraction': labeled_fraction,
                      'model.pseudo_label_thr': 0.5},
         gap_between=labels_gap),
    dict(name='10% labels: kd_det ConfidenceSoftLabel + the unlabeled 90%',
         config='configs/confidence_soft_label/csl_retinanet_mnv2_800it_embedded_semi10.py',
         cfg_options={'train_dataloader.dataset.datasets.0.labeled_fraction': labeled_fraction,
                      'train_dataloader.dataset.datasets.1.labeled_fraction': labeled_fraction,
                      **CSL_V1},
         gap_between=labels_gap),
]
seeds = [0, 1, 2]
teacher_seed = 0
# the teacher row: one seed (16 epochs of the wider model cost as much as three student runs)
teacher_seeds = [0]
input_shape = (3, 160, 160)
