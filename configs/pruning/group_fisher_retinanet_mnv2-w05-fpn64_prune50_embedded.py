# GroupFisher (mmrazor; Liu et al., ICML 2021) pruning of the embedded student to <= 50 % of its
# FLOPs inside the pruned rows' fine-tune recipe: 4 epochs from the trained student, AdamW at lr
# 1e-3, 50-iteration warm-up from 0.1, cosine to 0.05. Every 10 iterations the least important
# channels (Fisher information per FLOP, accumulated over those 10 iterations) are removed until
# the FLOPs meet a linear schedule that reaches 50 % at iteration 250 of 400; then it only trains.
#
#   OMP_NUM_THREADS=1 python tools/train.py \
#       configs/pruning/group_fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py --work-dir DIR \
#       --cfg-options model.architecture.init_cfg.checkpoint=STUDENT_CKPT
#   OMP_NUM_THREADS=1 python tools/group_fisher_report.py \
#       configs/pruning/group_fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py DIR/epoch_4.pth
#
# The student checkpoint is a plain detector's (backbone.*, neck.*, bbox_head.*) and the model is
# the algorithm (architecture.*, mutator.*), so it is loaded by the architecture's init_cfg, not
# by load_from. At the end the run writes the physically pruned detector into DIR/pruned/
# (pruned.py, pruned.pth, prune_report.json: `python tools/test.py DIR/pruned/pruned.py
# DIR/pruned/pruned.pth`); the second command builds it from any checkpoint of the run (weights +
# channel masks) and prints its FLOPs against the student's and its mAP.
_base_ = '../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'

# where `python tools/train.py <the student config>` leaves the 8-epoch student by default
student_checkpoint = 'work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth'
input_shape = (1, 3, 160, 160)
interval = 10

architecture = _base_.model
architecture['_scope_'] = 'mmdet'
# mmdet's MobileNetV2 also computes its 1280-channel conv2 and discards it (out_indices end at
# 6). GroupFisher's Fisher information needs a gradient at every conv that reads a prunable
# channel, and that conv never gets one (AssertionError in mmrazor's _fisher_of_a_module).
# SlimMobileNetV2 at the student's own hidden widths is the same network without the dead layer:
# same outputs and FLOPs; the checkpoint's backbone.conv2.* are left unused.
architecture.backbone.type = 'SlimMobileNetV2'
architecture.backbone.mid_channels = [16, 48, 96, 96, 96, 96, 96, 192, 192, 192, 192, 288, 288,
                                      288, 480, 480, 480]
architecture.init_cfg = dict(type='Pretrained', checkpoint=student_checkpoint)
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='GroupFisherAlgorithm',
    architecture=architecture,
    interval=interval,
    mutator=dict(
        type='FlopsTargetGroupFisherMutator',
        target_flops_ratio=0.5,
        prune_until_iter=250,
        input_shape=input_shape,
        parse_cfg=dict(type='ChannelAnalyzer', demo_input=input_shape, tracer_type='FxTracer'),
        channel_unit_cfg=dict(type='GroupFisherChannelUnit',
                              default_args=dict(normalization_type='flops'))))
# --launcher pytorch: GroupFisher's train step (all-reduced Fisher information) under DDP
model_wrapper_cfg = dict(type='mmrazor.GroupFisherDDP', broadcast_buffers=False,
                         find_unused_parameters=True)

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
# the kept channels of every unit, once per epoch. The FLOPs are logged by the mutator at each
# pruning step; mmrazor's ResourceInfoHook (save the checkpoint that crosses the target, then
# exit) belongs to upstream's prune-then-fine-tune recipe in two runs. GroupFisherExportHook
# writes the pruned detector into <work_dir>/pruned/ at the end, as FisherPruningHook does.
custom_hooks = [dict(type='mmrazor.PruningStructureHook'), dict(type='GroupFisherExportHook')]
