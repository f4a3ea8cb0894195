"""Resolve ``dict(cfg_path=...)`` model references to the model dict of that config."""
from typing import Union

from mmengine.config import Config, ConfigDict


def resolve_model_cfg(cfg: Union[dict, object]) -> Union[dict, object]:
    """Replace ``dict(cfg_path=PATH[, pretrained=False])`` by the ``model`` of config PATH.

    ``PATH`` is ``package::relative/path.py`` (``mmdet::``, ``kd_det::``, ...) or a config file
    on disk. The model gets its config's ``default_scope`` (mmdet if unset) so it builds from
    any registry, and the config's top-level ``data_preprocessor`` if it has one. Anything else
    (a full model dict, a built module) is returned unchanged.
    """
    if not isinstance(cfg, dict) or 'cfg_path' not in cfg or cfg.get('type'):
        return cfg
    path = cfg['cfg_path']
    if cfg.get('pretrained'):
        raise ValueError(f'pretrained=True for {path!r} would download weights; give a local '
                         'checkpoint instead (teacher_ckpt, or init_cfg=dict(type="Pretrained"'
                         ', checkpoint=...))')
    if '::' in path:
        from mmengine.hub import get_config
        loaded = get_config(path)
    else:
        loaded = Config.fromfile(path)
    model = ConfigDict(loaded.model.to_dict())
    if 'data_preprocessor' in loaded and 'data_preprocessor' not in model:
        model.data_preprocessor = loaded.data_preprocessor
    model.setdefault('_scope_', loaded.get('default_scope', 'mmdet'))
    return model
