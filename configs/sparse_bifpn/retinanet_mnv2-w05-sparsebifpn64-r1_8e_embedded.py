# The SparseBiFPN student with one BiFPN layer instead of two (8 fusion nodes instead of 16):
# the lighter variant of the latency comparison in docs/benchmarks.md.
_base_ = './retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py'

model = dict(neck=dict(num_repeats=1))
