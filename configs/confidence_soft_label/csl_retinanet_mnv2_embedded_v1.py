# v1 of the confidence-guided soft-label distiller, kept reproducible: regions per feature cell
# spread to all its anchors, standardised feature distance on those cells, hard-sample weights
# normalised by their mean, soft labels at one temperature.
_base_ = ['./csl_retinanet_mnv2_embedded.py']

model = dict(
    distiller=dict(
        region_unit='cell',
        feat_loss='standardized_region',
        weight_norm='mean_clamp',
        label_sharpening=0.0,
        loss_feat_weight=1.0))
