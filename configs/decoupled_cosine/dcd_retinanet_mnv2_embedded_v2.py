# The decoupled cosine distiller v2, for comparison: v3 (the default) with both spatial KLs
# restricted to the background cells instead of covering the whole map.
_base_ = ['./dcd_retinanet_mnv2_embedded.py']

model = dict(distiller=dict(kl_region='background'))
