# Ablation of v1: the gate judged cell by cell (the GT-class probability at each foreground cell)
# instead of once per object.
_base_ = ['./dcd_retinanet_mnv2_embedded_v1.py']

model = dict(distiller=dict(gate_level='location'))
