# Fine-tuning recipe for a trained (or pruned) model: 4 epochs at half the from-scratch learning
# rate, a 50-iteration warm-up from 0.1, cosine decay, evaluation and a checkpoint at the end. A
# config that inherits a from-scratch config and this file applies it with
#   train_cfg = _base_.finetune_train_cfg
#   optim_wrapper = _base_.finetune_optim_wrapper
#   param_scheduler = _base_.finetune_param_scheduler
#   default_hooks = _base_.finetune_default_hooks
finetune_epochs = 4
finetune_train_cfg = dict(max_epochs=finetune_epochs, val_interval=finetune_epochs)
finetune_optim_wrapper = dict(optimizer=dict(lr=1e-3))
finetune_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=finetune_epochs,
         eta_min_ratio=0.05, convert_to_iter_based=True),
]
finetune_default_hooks = dict(checkpoint=dict(interval=finetune_epochs))
