# The decoupled cosine distiller as kd_det's first version shipped it (v1), for comparison
# (what v1 is: configs/_base_/distill/decoupled_cosine_v1.py).
_base_ = ['./dcd_retinanet_mnv2_embedded.py', '../_base_/distill/decoupled_cosine_v1.py']

model = dict(distiller=_base_.decoupled_cosine_v1)
