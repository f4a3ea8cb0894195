# The embedded student with its FPN swapped for a 64-channel SparseBiFPN (P3-P7, 2 layers).
# Same backbone, head, data and schedule as ../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py.
_base_ = '../embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'

model = dict(
    neck=dict(
        _delete_=True,
        type='SparseBiFPN',
        in_channels=[16, 48, 160],
        out_channels=64,
        num_outs=5,
        num_repeats=2,
        extra_downsample='max_pool'))
