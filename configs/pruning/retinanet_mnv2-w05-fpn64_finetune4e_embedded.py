# The fine-tuning recipe of the pruning benchmark, and its "same schedule, not pruned" reference:
# the embedded student (configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py) trained 4 more
# epochs from its 8-epoch checkpoint at half the learning rate, short warm-up. Every pruned row
# of configs/benchmark/pruning.py gets these same 4 epochs, so all rows train 8 + 4 epochs.
#   python tools/train.py configs/pruning/retinanet_mnv2-w05-fpn64_finetune4e_embedded.py \
#       --cfg-options load_from=work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth
_base_ = ['../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py',
          '../_base_/schedules/cpu_finetune_4e.py']

# where `python tools/train.py <the student config>` leaves the 8-epoch student by default
load_from = 'work_dirs/retinanet_mnv2-w05-fpn64_8e_embedded/epoch_8.pth'
train_cfg = _base_.finetune_train_cfg
optim_wrapper = _base_.finetune_optim_wrapper
param_scheduler = _base_.finetune_param_scheduler
default_hooks = _base_.finetune_default_hooks
