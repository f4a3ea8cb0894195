# Step 3 of README.md: the fine-tuning recipe for a pruned SparseBiFPN student: 4 epochs at half
# the learning rate, short warm-up, no sparsity hook. `tools/prune.py ... --finetune-config
# <this file>` writes pruned.py = this recipe + the pruned widths + load_from the pruned weights;
# train that file (or inherit it: `_base_ = 'work_dirs/.../pruned.py'`).
_base_ = './retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py'

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
