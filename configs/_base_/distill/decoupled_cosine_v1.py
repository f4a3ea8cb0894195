# The decoupled cosine distiller as kd_det's first version shipped it (v1): scale-aware
# foreground on every level (levels averaged), per-anchor Bernoulli KL on background cells gated
# to where the teacher is more sure of background, no background feature term, the object gate
# on the GT-class score without a floor; fg x6 / bg x10 (v1's embedded weights). Configs that
# reproduce v1 numbers use `distiller=_base_.decoupled_cosine_v1`.
decoupled_cosine_v1 = dict(
    type='DecoupledCosineDistiller',
    fg_mode='all_levels',
    fg_center_features=False,
    bg_kl='bernoulli',
    bg_gate='teacher_better',
    loss_bg_feat_weight=0.0,
    loss_fg_weight=6.0,
    loss_bg_weight=10.0,
    temperature=1.0,
    gate='hard',
    gate_level='object',
    gate_quality='score',
    gate_floor=0.0)
