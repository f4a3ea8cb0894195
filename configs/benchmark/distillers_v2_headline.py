# The headline rows of configs/benchmark/distillers_v2.py (same runs, same work_root): student,
# both kd_det distillers at their defaults (and DecoupledCosine v2), mmrazor's CWD and PKD on 5
# seeds, with the measurements (params, FLOPs, latency and the interleaved training step times)
# and the comparison paired by seed with CWD.
#   python tools/benchmark.py configs/benchmark/distillers_v2_headline.py --jobs 2
_base_ = ['./distillers_v2.py']

methods = _base_.methods[:5]  # the five 5-seed rows come first there
