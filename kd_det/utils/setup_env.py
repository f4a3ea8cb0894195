"""``register_all_modules`` in the OpenMMLab convention (used by ``mmengine.hub.get_model``)."""
from mmengine.registry import init_default_scope as _init_default_scope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's and kd_det's modules; optionally make ``kd_det`` the default scope."""
    from mmdet.utils import register_all_modules as register_mmdet_modules
    register_mmdet_modules(init_default_scope=False)
    import kd_det  # noqa: F401
    if init_default_scope:
        _init_default_scope('kd_det')
