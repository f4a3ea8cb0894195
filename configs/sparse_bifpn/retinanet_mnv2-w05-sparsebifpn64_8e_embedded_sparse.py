# Step 1 of README.md: train the SparseBiFPN student with sparsity on its channel groups (neck,
# head stacked convs, MobileNetV2 hidden channels) and fusion edges. No penalty in epoch 1, then
# a linear ramp to full strength over epochs 2-3 (SparsityHook documents the weights' scale).
_base_ = './retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py'

custom_hooks = [
    dict(
        type='SparsityHook',
        # RetinaHead has no norm: its groups are conv filters (RMS ~0.05 vs ~0.7 for BN scales)
        channel_weight=dict(neck=0.5, head=0.05, backbone=0.5),
        fusion_weight=0.5,
        warmup=1,
        ramp=2,
        by_epoch=True)
]
