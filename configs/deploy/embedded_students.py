# The deployment table of the embedded students (issue #16): every student in PyTorch,
# onnxruntime fp32 / int8 and NCNN fp32, with params, FLOPs, file size, batch-1 latency at 1 and
# 2 threads (interleaved) and COCO mAP of each deployed artifact.
#   python tools/deploy_table.py configs/deploy/embedded_students.py
# The checkpoints come from these commands (seed 0):
#   student and distilled student: python tools/benchmark.py configs/benchmark/distillers_v2.py
#   distilled + pruned: python tools/train.py \
#       configs/sparse_bifpn/dcd_retinanet_mnv2-sparsebifpn64_embedded_sparse.py \
#       --work-dir work_dirs/deploy/dcd_sparse --cfg-options model.teacher_ckpt=TEACHER
#     then tools/prune.py ... --ratio 0.5 --out-dir work_dirs/deploy/dcd_sparse/pruned_r0.5
#     --finetune-config configs/sparse_bifpn/retinanet_mnv2-sparsebifpn64_pruned_finetune.py
#     and tools/train.py work_dirs/deploy/dcd_sparse/pruned_r0.5/pruned.py
#     --work-dir work_dirs/deploy/dcd_sparse/pruned_r0.5/finetune (configs/sparse_bifpn/README.md)
#   distilled FPN student, pruned: python tools/prune.py \
#       configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py DISTILLED_CKPT --ratio 0.5 \
#       --families head backbone --out-dir work_dirs/deploy/dcd_v3_fpn_pruned \
#       --finetune-config configs/sparse_bifpn/retinanet_mnv2-sparsebifpn64_pruned_finetune.py
#     then tools/train.py work_dirs/deploy/dcd_v3_fpn_pruned/pruned.py
#     --work-dir work_dirs/deploy/dcd_v3_fpn_pruned/finetune
work_root = 'work_dirs/deploy/embedded_students'
_runs = 'work_dirs/benchmark/distillers_v2'
_pruned = 'work_dirs/deploy/dcd_sparse/pruned_r0.5'
_fpn_pruned = 'work_dirs/deploy/dcd_v3_fpn_pruned'
models = [
    dict(name='student (FPN-64)',
         config='configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py',
         checkpoint=f'{_runs}/student__retinanet_mnv2_0_5_fpn_64__8e/seed0/epoch_8.pth'),
    dict(name='distilled student (DecoupledCosine v3)',
         config='configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py',
         checkpoint=f'{_runs}/kd_det_decoupledcosine_v3/seed0/epoch_8.pth'),
    dict(name='distilled + pruned student (SparseBiFPN, 50 %)',
         config=f'{_pruned}/pruned.py', checkpoint=f'{_pruned}/finetune/epoch_4.pth'),
    dict(name='distilled + pruned student (FPN-64, head + backbone 50 %)',
         config=f'{_fpn_pruned}/pruned.py', checkpoint=f'{_fpn_pruned}/finetune/epoch_4.pth'),
]
targets = ['PyTorch fp32', 'ORT fp32', 'ORT int8', 'NCNN fp32']
threads = [1, 2]
input_shape = (3, 160, 160)
