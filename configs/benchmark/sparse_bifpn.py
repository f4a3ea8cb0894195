# `python tools/benchmark.py configs/benchmark/sparse_bifpn.py`: necks on the embedded student
# (same MobileNetV2-0.5 backbone, RetinaNet head, data and 8-epoch schedule), 3 seeds; then the
# sparsity-trained SparseBiFPN student pruned at two ratios and fine-tuned, next to the same
# fine-tune without pruning (`prune`, run by kd_det.pruning.prune_chain). The FPN baseline fills
# the 'teacher' slot: it is trained for every seed like the others and nothing distils from it.
# `--deploy-only` prints params, FLOPs and PyTorch/onnxruntime latency of every network without
# training.
work_root = 'work_dirs/benchmark/sparse_bifpn'
teacher = dict(name='FPN-64 (mmdet)',
               config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
student = dict(name='SparseBiFPN-64',
               config='configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py')
methods = [
    dict(name='PAFPN-64 (mmdet)', role='student',
         config='configs/sparse_bifpn/retinanet_mnv2-w05-pafpn64_8e_embedded.py'),
    # one BiFPN layer instead of two: 8 fusion nodes, the latency comparison's lighter variant
    dict(name='SparseBiFPN-64, 1 layer', role='student',
         config='configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64-r1_8e_embedded.py'),
    dict(name='SparseBiFPN-64 sparsity-trained', role='student',
         config='configs/sparse_bifpn/retinanet_mnv2-w05-sparsebifpn64_8e_embedded_sparse.py'),
]
prune = dict(
    source='SparseBiFPN-64 sparsity-trained',
    ratios=[0.0, 0.3, 0.5],  # 0: the same fine-tune without pruning (the fair reference)
    finetune_config='configs/sparse_bifpn/retinanet_mnv2-sparsebifpn64_pruned_finetune.py')
seeds = [0, 1, 2]
teacher_seed = 0
teacher_seeds = [0, 1, 2]  # the FPN baseline is a row like the others: every seed
input_shape = (3, 160, 160)
