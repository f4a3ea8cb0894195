# Seed distillers v2/v3 against mmrazor's CWD and PKD on the embedded pair (issue #14).
#   python tools/benchmark.py configs/benchmark/distillers_v2.py --jobs 2
# Headline rows (student, CWD, PKD and both kd_det distillers at their defaults: DecoupledCosine
# v3, ConfidenceSoftLabel v2) on 5 seeds, compared paired by seed with CWD (results_paired.md).
# DecoupledCosine v2 (5 seeds) is v3's ablation. Ablation rows undo one change of v2 each (and
# run v1 itself) on seeds 0-2, compared paired by seed with the v2 row they change.
# Every distillation row uses the seed-0 teacher and the
# student's 8-epoch schedule.
work_root = 'work_dirs/benchmark/distillers_v2'
teacher = dict(name='teacher: RetinaNet MNv2-1.0 FPN-128 (16e)',
               config='configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py')
student = dict(name='student: RetinaNet MNv2-0.5 FPN-64 (8e)',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
paired_reference = 'mmrazor CWD (FPN)'
DCD = 'configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py'
CSL = 'configs/confidence_soft_label/csl_retinanet_mnv2_embedded.py'
ABLATION = [0, 1, 2]


def distiller_options(**options):
    return {f'model.distiller.{key}': value for key, value in options.items()}


# v2 of DecoupledCosine is v3 (the default) with both spatial KLs on background cells only
DCD_V2 = dict(kl_region='background')

methods = [
    # headline, 5 seeds
    dict(name='kd_det DecoupledCosine v3', config=DCD),
    dict(name='kd_det DecoupledCosine v2', config=DCD, cfg_options=distiller_options(**DCD_V2),
         ablation_of='kd_det DecoupledCosine v3'),
    dict(name='kd_det ConfidenceSoftLabel v2', config=CSL),
    dict(name='mmrazor CWD (FPN)', config='configs/mmrazor_baselines/cwd_fpn_embedded.py'),
    dict(name='mmrazor PKD (FPN)', config='configs/mmrazor_baselines/pkd_fpn_embedded.py'),
    # ablations, in the order they were run: v1 of both, then one v2 change undone per row
    dict(name='kd_det DecoupledCosine v1',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded_v1.py', seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    dict(name='kd_det ConfidenceSoftLabel v1',
         config='configs/confidence_soft_label/csl_retinanet_mnv2_embedded_v1.py',
         seeds=ABLATION,
         ablation_of='kd_det ConfidenceSoftLabel v2'),
    dict(name='DCD v2 without the background feature term', config=DCD,
         cfg_options=distiller_options(**DCD_V2, loss_bg_feat_weight=0.0), seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    dict(name='CSL v2 with v1 feature term (standardised, regions)', config=CSL,
         cfg_options=distiller_options(feat_loss='standardized_region'), seeds=ABLATION,
         ablation_of='kd_det ConfidenceSoftLabel v2'),
    dict(name='DCD v2 with v1 background KL (Bernoulli, gated)', config=DCD,
         cfg_options=distiller_options(**DCD_V2, bg_kl='bernoulli', bg_gate='teacher_better',
                                       loss_bg_weight=10.0),
         seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    dict(name='CSL v2 with v1 regions (per cell)', config=CSL,
         cfg_options=distiller_options(region_unit='cell'), seeds=ABLATION,
         ablation_of='kd_det ConfidenceSoftLabel v2'),
    dict(name='DCD v2 with v1 foreground (all levels) and gate', config=DCD,
         cfg_options=distiller_options(**DCD_V2, fg_mode='all_levels'), seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    dict(name='CSL v2 with v1 hard-sample weights (mean, clamp)', config=CSL,
         cfg_options=distiller_options(weight_norm='mean_clamp'), seeds=ABLATION,
         ablation_of='kd_det ConfidenceSoftLabel v2'),
    dict(name='DCD v2 with uncentred cosine', config=DCD,
         cfg_options=distiller_options(**DCD_V2, fg_center_features=False), seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    dict(name='CSL v2 without label sharpening', config=CSL,
         cfg_options=distiller_options(label_sharpening=0.0), seeds=ABLATION,
         ablation_of='kd_det ConfidenceSoftLabel v2'),
    dict(name='DCD v2 with v1 gate (score, no floor)', config=DCD,
         cfg_options=distiller_options(**DCD_V2, gate_quality='score', gate_floor=0.0),
         seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v2'),
    # what each term of v3 contributes: without the cosine, v3 is CWD on features and logits
    dict(name='DCD v3 without the foreground cosine', config=DCD,
         cfg_options=distiller_options(loss_fg_weight=0.0), seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v3'),
    dict(name='DCD v3 without the logit spatial KL', config=DCD,
         cfg_options=distiller_options(loss_bg_weight=0.0), seeds=ABLATION,
         ablation_of='kd_det DecoupledCosine v3'),
]
seeds = [0, 1, 2, 3, 4]
teacher_seed = 0
# the teacher row: one seed (16 epochs of the wider model cost as much as three student runs)
teacher_seeds = [0]
input_shape = (3, 160, 160)
