# Ablation of v1: the decoupled cosine distiller without the teacher-better gate.
_base_ = ['./dcd_retinanet_mnv2_embedded_v1.py']

model = dict(distiller=dict(gate='off'))
