# The decoupled cosine distiller as kd_det's first version shipped it (v1), for comparison:
# scale-aware foreground on every level (levels averaged), per-anchor Bernoulli KL on background
# cells gated to where the teacher is more sure of background, no background feature term, the
# object gate on the GT-class score without a floor; fg x6 / bg x10 (v1's embedded weights).
_base_ = ['./dcd_retinanet_mnv2_embedded.py']

model = dict(
    distiller=dict(
        fg_mode='all_levels',
        fg_center_features=False,
        bg_kl='bernoulli',
        bg_gate='teacher_better',
        loss_bg_feat_weight=0.0,
        loss_fg_weight=6.0,
        loss_bg_weight=10.0,
        gate='hard',
        gate_level='object',
        gate_quality='score',
        gate_floor=0.0))
