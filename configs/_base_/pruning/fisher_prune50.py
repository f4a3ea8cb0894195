# Progressive Fisher pruning (FisherPruningHook, kd_det/pruning/fisher_pruning_hook.py) to 50 % of
# the detector's FLOPs during a 400-iteration (4-epoch) fine-tune: every 10 iterations of the
# first 250 the channels (backbone, FPN, head) with the lowest Fisher importance per FLOP are
# masked, on a linear schedule (2 % of the FLOPs per step, each step decided on the last 10
# iterations' importance); the last 150 iterations fine-tune the final network. At the end the
# masked channels are cut out into <work_dir>/pruned/ (pruned.py + pruned.pth: a plain mmdet
# config and checkpoint). The window is the one the mmrazor GroupFisher row of
# configs/benchmark/pruning.py uses.
custom_hooks = [
    dict(type='FisherPruningHook', flops_target=0.5, begin=0, end=250, interval=10,
         families=['neck', 'head', 'backbone'], divisor=8, schedule='linear'),
]
