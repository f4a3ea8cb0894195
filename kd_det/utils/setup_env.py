"""``register_all_modules`` in the OpenMMLab convention (used by ``mmengine.hub.get_model``)."""
from mmengine.registry import init_default_scope as _init_default_scope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's and kd_det's modules; optionally make ``mmdet`` the default scope.

    kd_det registers in mmdet's and mmrazor's registries (see :mod:`kd_det.registry`) and its
    configs keep mmdet's ``default_scope='mmdet'``, so that is the scope to build them in.
    """
    from mmdet.utils import register_all_modules as register_mmdet_modules
    register_mmdet_modules(init_default_scope=False)
    import kd_det  # noqa: F401
    if init_default_scope:
        _init_default_scope('mmdet')
