"""Pre-flight check ``types``: every ``type`` in the config is a registered name (misspelled
types get "did you mean")."""
import difflib
from typing import Iterator, Set, Tuple

from mmengine.config import Config

from kd_det.preflight.errors import PreflightError, _first_line

# `type` values that are not registry names: mmcv's batched_nms evaluates nms_cfg['type'], and
# mmdet's RoI extractors take `roi_layer.type` from mmcv.ops.
NMS_TYPES = ('nms', 'soft_nms', 'nms_rotated', 'nms_quadri')


def registered_names() -> Set[str]:
    """Every name registered in any registry of any scope (mmengine, mmcv, mmdet, mmrazor,
    kd_det), after importing the modules each registry declares."""
    import mmengine.registry as mmengine_registry
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    names: Set[str] = set()

    def visit(registry) -> None:
        registry.import_from_location()
        names.update(registry.module_dict)
        for child in list(registry._children.values()):
            visit(child)

    for value in vars(mmengine_registry).values():
        if isinstance(value, mmengine_registry.Registry):
            visit(value)
    return names


def _walk_types(node, path: str) -> Iterator[Tuple[str, str, dict]]:
    """``(path, type, dict)`` of every dict with a string ``type`` below ``node``."""
    if isinstance(node, dict):
        type_name = node.get('type')
        if isinstance(type_name, str):
            yield path, type_name, node
        for key, value in node.items():
            if key == 'cfg_path' or (key in ('architecture', 'teacher') and isinstance(
                    value, dict) and 'cfg_path' in value and not value.get('type')):
                if key != 'cfg_path':
                    yield from _walk_model_reference(value, f'{path}.{key}')
                continue
            yield from _walk_types(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _walk_types(value, f'{path}[{index}]')


def _walk_model_reference(reference: dict, path: str) -> Iterator[Tuple[str, str, dict]]:
    from kd_det.models.utils.model_config import resolve_model_cfg
    try:
        model = resolve_model_cfg(reference)
    except Exception as err:  # a wrong cfg_path is a config mistake too
        raise PreflightError(f'{path}.cfg_path={reference["cfg_path"]!r} cannot be read '
                             f'({_first_line(err)}); give a config file path or '
                             "'package::path.py' (mmdet::, kd_det::)") from None
    yield from _walk_types(model, f'{path} (from {reference["cfg_path"]})')


def _is_known(path: str, type_name: str, names: Set[str]) -> bool:
    name = type_name.split('.')[-1]
    if name in names:
        return True
    # mmrazor appends the suffix: dict(type='ModuleOutputs') in *_recorders builds
    # ModuleOutputsRecorder, dict(type='MethodOutputs') in deliveries MethodOutputsDelivery
    if ('recorders' in path and name + 'Recorder' in names) or (
            'deliveries' in path and name + 'Delivery' in names):
        return True
    if path.split('.')[-1] == 'nms' and name in NMS_TYPES:
        return True
    if path.split('.')[-1] == 'roi_layer':
        import mmcv.ops
        return hasattr(mmcv.ops, name)
    return False


def check_registered_types(cfg: Config) -> None:
    """Every ``type`` in the config is a registered name; otherwise suggest the closest ones."""
    names = registered_names()
    lowered = {name.lower(): name for name in names}
    unknown = []
    for path, type_name, _ in _walk_types(cfg.to_dict(), ''):
        if _is_known(path, type_name, names):
            continue
        name = type_name.split('.')[-1]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        if name.lower() in lowered and lowered[name.lower()] not in close:
            close.insert(0, lowered[name.lower()])
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            'no registered name is close; is the module that registers it in custom_imports?'
        unknown.append(f'  {path}.type={type_name!r}: {hint}')
    if unknown:
        raise PreflightError(
            'unknown type names in the config (not registered in mmengine, mmcv, mmdet, mmrazor '
            'or kd_det):\n' + '\n'.join(unknown) + '\nFix the spelling of these `type` entries.')
