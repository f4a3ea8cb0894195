# Progressive Fisher pruning (FisherPruningHook, kd_det/pruning/fisher_pruning_hook.py) to 50 % of
# the detector's FLOPs during the first 2 epochs of a 4-epoch fine-tune: every 10 iterations the
# channels (backbone, FPN, head) with the lowest Fisher importance per FLOP are masked, on a cubic
# schedule; the last 2 epochs fine-tune the final network. At the end the masked channels are cut
# out into <work_dir>/pruned/ (pruned.py + pruned.pth: a plain mmdet config and checkpoint).
custom_hooks = [
    dict(type='FisherPruningHook', flops_target=0.5, begin=0, end=2, by_epoch=True,
         interval=10, families=['neck', 'head', 'backbone'], divisor=8, schedule='cubic'),
]
