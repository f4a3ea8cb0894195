# The embedded student pruned progressively to 50 % of its FLOPs during the 4-epoch fine-tune
# (the hook in ../_base_/pruning/fisher_prune50.py), from its 8-epoch checkpoint.
#   python tools/train.py configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py \
#       --cfg-options load_from=<8-epoch student checkpoint>
# then: python tools/test.py <work_dir>/pruned/pruned.py <work_dir>/pruned/pruned.pth
_base_ = ['./retinanet_mnv2-w05-fpn64_finetune4e_embedded.py',
          '../_base_/pruning/fisher_prune50.py']
