# Ablation: the decoupled cosine distiller without the teacher-better gate.
_base_ = ['./dcd_retinanet_mnv2_embedded.py']

model = dict(distiller=dict(gate='off'))
