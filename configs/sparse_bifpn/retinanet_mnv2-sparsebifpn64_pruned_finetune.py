# Step 3 of README.md: the fine-tuning recipe for a pruned SparseBiFPN student: 4 epochs at half
# the learning rate, short warm-up, no sparsity hook. `tools/prune.py ... --finetune-config
# <this file>` writes pruned.py = this recipe + the pruned widths + load_from the pruned weights;
# train that file (or inherit it: `_base_ = 'work_dirs/.../pruned.py'`).
_base_ = ['./retinanet_mnv2-w05-sparsebifpn64_8e_embedded.py',
          '../_base_/schedules/cpu_finetune_4e.py']

train_cfg = _base_.finetune_train_cfg
optim_wrapper = _base_.finetune_optim_wrapper
param_scheduler = _base_.finetune_param_scheduler
default_hooks = _base_.finetune_default_hooks
