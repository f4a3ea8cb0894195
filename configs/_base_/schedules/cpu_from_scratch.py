# From-scratch schedule for small CPU runs: AdamW with warm-up and cosine decay, evaluation and a
# checkpoint at the end. Epoch counts are set by each config (`train_cfg.max_epochs`).
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
