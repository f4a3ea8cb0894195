# The fine-tuning recipe of the pruning benchmark, and its "same schedule, not pruned" reference:
# the embedded student (configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py) trained 4 more
# epochs from its 8-epoch checkpoint at half the learning rate, short warm-up. Every pruned row
# of configs/benchmark/pruning.py gets these same 4 epochs, so all rows train 8 + 4 epochs.
#   python tools/train.py configs/pruning/retinanet_mnv2-w05-fpn64_finetune4e_embedded.py \
#       --cfg-options load_from=work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth
_base_ = '../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'

# where `python tools/train.py <the student config>` leaves the 8-epoch student by default
load_from = 'work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth'
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
