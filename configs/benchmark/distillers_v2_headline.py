# The headline rows of configs/benchmark/distillers_v2.py (same runs, same work_root): student,
# both kd_det distillers v2 at their defaults, mmrazor's CWD and PKD on 5 seeds, with the
# measurements (params, FLOPs, latency and the interleaved training step times) and the
# comparison paired by seed with CWD.
#   python tools/benchmark.py configs/benchmark/distillers_v2_headline.py --jobs 2
_base_ = ['./distillers_v2.py']

methods = [
    dict(name='kd_det DecoupledCosine v2',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py'),
    dict(name='kd_det ConfidenceSoftLabel v2',
         config='configs/confidence_soft_label/csl_retinanet_mnv2_embedded.py'),
    dict(name='mmrazor CWD (FPN)', config='configs/mmrazor_baselines/cwd_fpn_embedded.py'),
    dict(name='mmrazor PKD (FPN)', config='configs/mmrazor_baselines/pkd_fpn_embedded.py'),
]
