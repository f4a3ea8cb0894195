"""Pre-flight checks: configuration mistakes fail in seconds, before a long run starts.

``kd_det.apis.runner`` (so ``tools/train.py``, ``tools/test.py``, the demo and the benchmark)
runs :func:`check_config` on the merged config before the Runner is built and
:func:`check_built_model` on the built model before training. Each check is one function that
raises :class:`PreflightError` whose message names the config entry and what to change.

A config may switch checks off by name (e.g. for a custom dataset format)::

    preflight = dict(skip=['types', 'datasets'])

Check names: ``types``, ``datasets``, ``checkpoints``, ``teacher``, ``classes``, ``shapes``.
"""
import difflib
import json
import logging
import os
import os.path as osp
import random
from typing import Dict, Iterator, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from kd_det.utils.checkpoint import (latest_complete_checkpoint, load_checkpoint_file,
                                     load_state_dict_strict)

CHECKS = ('types', 'datasets', 'checkpoints', 'teacher', 'classes', 'shapes')
DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader', )}
# `type` values that are not registry names: mmcv's batched_nms evaluates nms_cfg['type'], and
# mmdet's RoI extractors take `roi_layer.type` from mmcv.ops.
NMS_TYPES = ('nms', 'soft_nms', 'nms_rotated', 'nms_quadri')
IMAGE_SAMPLE = 20


class PreflightError(ValueError):
    """A configuration mistake found before training; the message says what to change."""


def _skipped(cfg: Config) -> Set[str]:
    skip = set((cfg.get('preflight') or {}).get('skip', ()))
    unknown = skip - set(CHECKS)
    if unknown:
        raise PreflightError(f'preflight.skip has unknown checks {sorted(unknown)}; '
                             f'choose from {list(CHECKS)}')
    return skip


def check_config(cfg: Config, mode: str = 'train') -> Optional[dict]:
    """Run every static check on ``cfg`` (``mode``: ``'train'`` or ``'test'``).

    Returns:
        The teacher checkpoint (weights and meta) if one was read, else None.
    """
    skip = _skipped(cfg)
    if 'types' not in skip:
        check_registered_types(cfg)
    if 'datasets' not in skip:
        check_datasets(cfg, mode)
    if 'checkpoints' not in skip:
        check_resume_and_load_from(cfg, mode)
    if mode != 'train':
        return None
    teacher_checkpoint = None
    if 'teacher' not in skip:
        teacher_checkpoint = check_teacher_checkpoint(cfg)
    if 'classes' not in skip:
        check_class_consistency(cfg, teacher_checkpoint)
    if 'teacher' not in skip:
        check_teacher_matches_config(cfg)
    return teacher_checkpoint


def check_built_model(cfg: Config, model: nn.Module) -> None:
    """Checks that need the built model (the distillation dry run)."""
    if 'shapes' not in _skipped(cfg):
        check_distill_shapes(model)


# ---- 1. misspelled types ------------------------------------------------------------------------
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


# ---- 2. datasets -------------------------------------------------------------------------------
def _leaf_datasets(dataset: dict, path: str) -> Iterator[Tuple[str, dict]]:
    """The datasets that read files, below wrappers (``dataset=``/``datasets=``)."""
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('dataset'), dict):
        yield from _leaf_datasets(dataset['dataset'], f'{path}.dataset')
    elif isinstance(dataset.get('datasets'), (list, tuple)):
        for index, child in enumerate(dataset['datasets']):
            yield from _leaf_datasets(child, f'{path}.datasets[{index}]')
    else:
        yield path, dataset


def _resolve(data_root: str, path: str) -> str:
    """``path`` as mmengine's BaseDataset resolves it (relative paths below data_root)."""
    if osp.isabs(path) or not data_root:
        return path
    return osp.join(data_root, path)


def _default_classes(dataset: dict) -> Optional[Tuple[str, ...]]:
    from mmdet.registry import DATASETS
    try:
        dataset_cls = DATASETS.get(str(dataset.get('type', '')).split('.')[-1])
    except Exception:
        return None
    classes = getattr(dataset_cls, 'METAINFO', {}).get('classes') if dataset_cls else None
    return tuple(classes) if classes else None


def dataset_classes(dataset: dict) -> Optional[Tuple[str, ...]]:
    """The class names a dataset config trains on: ``metainfo.classes``, else the dataset
    type's default (``CocoDataset``: the 80 COCO classes)."""
    for _, leaf in _leaf_datasets(dataset, ''):
        classes = (leaf.get('metainfo') or {}).get('classes')
        return tuple(classes) if classes else _default_classes(leaf)
    return None


def load_coco_json(ann_file: str, where: str) -> dict:
    """Read a COCO annotation file, raising :class:`PreflightError` if it is not valid COCO."""
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise PreflightError(f'{where}: {ann_file} is not valid JSON ({err.msg} at line '
                             f'{err.lineno}, column {err.colno}); is the file complete? Point '
                             'ann_file at a COCO-format annotation file') from None
    except (OSError, UnicodeDecodeError) as err:
        raise PreflightError(f'{where}: cannot read {ann_file} ({_first_line(err)})') from None
    if not isinstance(coco, dict):
        raise PreflightError(f'{where}: {ann_file} is not a COCO annotation file (its top level '
                             f'is a {type(coco).__name__}, not an object with "images", '
                             '"annotations" and "categories")')
    missing = [key for key in ('images', 'categories') if not isinstance(coco.get(key), list)]
    if 'annotations' in coco and not isinstance(coco['annotations'], list):
        missing.append('annotations')
    if missing:
        raise PreflightError(f'{where}: {ann_file} is not a COCO annotation file: '
                             f'{", ".join(repr(m) for m in missing)} missing or not a list. '
                             'Convert the annotations to COCO format (images, annotations, '
                             'categories) or use the dataset type for their format')
    for key, fields in (('images', ('id', 'file_name')), ('categories', ('id', 'name')),
                        ('annotations', ('image_id', 'category_id', 'bbox'))):
        for index, entry in enumerate(coco.get(key, [])):
            absent = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            bad_box = key == 'annotations' and not absent and not (
                isinstance(entry['bbox'], list) and len(entry['bbox']) == 4)
            if absent or bad_box:
                problem = (f'has no {", ".join(absent)}' if absent else
                           f'has bbox {entry["bbox"]!r}, not [x, y, width, height]')
                raise PreflightError(f'{where}: {ann_file} is not valid COCO: {key}[{index}] '
                                     f'{problem}')
    return coco


def check_coco_dataset(dataset: dict, where: str) -> None:
    """A COCO dataset config: the annotation file is valid, lists images that exist on disk,
    and its categories include the configured classes."""
    data_root = dataset.get('data_root') or ''
    if not dataset.get('ann_file'):
        return
    ann_file = _resolve(data_root, dataset['ann_file'])
    if not osp.isfile(ann_file):
        raise PreflightError(
            f'{where}.ann_file: {ann_file} does not exist (data_root={data_root!r}, '
            f'ann_file={dataset.get("ann_file")!r}). Set data_root/ann_file to your annotation '
            'file; the embedded dataset is made with '
            '`python -m kd_det.datasets.synthetic --out data/synthetic`')
    if not ann_file.endswith('.json'):
        return
    coco = load_coco_json(ann_file, f'{where}.ann_file')
    images = coco['images']
    if not images:
        raise PreflightError(f'{where}: {ann_file} lists no images; the dataset is empty. '
                             'Point ann_file at the annotation file of your images')
    img_prefix = _resolve(data_root, (dataset.get('data_prefix') or {}).get('img', '') or '')
    step = max(1, len(images) // IMAGE_SAMPLE)
    sample = [osp.join(img_prefix, img['file_name']) for img in images[::step][:IMAGE_SAMPLE]]
    missing = [path for path in sample if not osp.isfile(path)]
    if len(missing) == len(sample):
        raise PreflightError(
            f'{where}: none of the {len(sample)} images checked exist, e.g. {missing[0]} '
            f'(data_root={data_root!r}, data_prefix.img='
            f'{(dataset.get("data_prefix") or {}).get("img")!r} + file_name). Set data_root and '
            'data_prefix.img so that they + file_name give the image paths')
    if missing:
        print_log(f'{where}: {len(missing)} of {len(sample)} images checked do not exist, e.g. '
                  f'{missing[0]}; they will fail to load', logger='current',
                  level=logging.WARNING)
    categories = [cat['name'] for cat in coco['categories']]
    classes = dataset_classes(dataset)
    if classes is not None:
        absent = [name for name in classes if name not in categories]
        if len(absent) == len(classes):
            raise PreflightError(
                f'{where}: none of the configured classes {_short(classes)} is a category of '
                f'{ann_file} (its categories: {_short(categories)}). Set '
                f'{where.split(".")[0]}.dataset.metainfo=dict(classes=(...)) to the category '
                'names of your annotation file')
        if absent:
            hints = []
            for name in absent:
                close = difflib.get_close_matches(name, categories, n=1)
                hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
            raise PreflightError(
                f'{where}: classes {", ".join(hints)} of metainfo.classes are not categories '
                f'of {ann_file}; mmdet would silently shift the labels of the other classes. '
                'Fix metainfo.classes')
        filter_cfg = dataset.get('filter_cfg') or {}
        wanted = {cat['id'] for cat in coco['categories'] if cat['name'] in classes}
        if filter_cfg.get('filter_empty_gt') and not dataset.get('test_mode') and not any(
                ann['category_id'] in wanted for ann in coco.get('annotations', [])):
            raise PreflightError(
                f'{where}: {ann_file} has no boxes of the configured classes and '
                'filter_cfg.filter_empty_gt=True drops images without boxes: nothing would be '
                'left to train on. Check metainfo.classes or set filter_empty_gt=False')


def check_datasets(cfg: Config, mode: str = 'train') -> None:
    """Each dataloader's dataset (and the COCO evaluator's ann_file) is usable."""
    for loader_name in DATALOADERS[mode]:
        loader = cfg.get(loader_name)
        if not isinstance(loader, dict) or (loader_name == 'val_dataloader' and
                                            cfg.get('val_cfg') is None):
            continue
        for path, dataset in _leaf_datasets(loader.get('dataset'), f'{loader_name}.dataset'):
            check_coco_dataset(dataset, path)
    evaluators = ('val_evaluator', ) if mode == 'train' else ('test_evaluator', )
    for name in evaluators:
        if mode == 'train' and cfg.get('val_cfg') is None:
            continue
        evaluator = cfg.get(name)
        for index, metric in enumerate(evaluator if isinstance(evaluator, list) else
                                       [evaluator]):
            ann_file = metric.get('ann_file') if isinstance(metric, dict) else None
            if not ann_file:
                continue
            where = f'{name}.ann_file' if not isinstance(evaluator, list) else \
                f'{name}[{index}].ann_file'
            if not osp.isfile(ann_file):
                raise PreflightError(f'{where}: {ann_file} does not exist; point it at the '
                                     'annotation file of the validation images')
            if ann_file.endswith('.json'):
                load_coco_json(ann_file, where)


# ---- 3. checkpoints ----------------------------------------------------------------------------
def resolve_resume_checkpoint(cfg: Config) -> None:
    """``resume=True`` without a path: the newest *complete* checkpoint of the work dir.

    mmengine follows ``last_checkpoint`` blindly; after a crash it may be empty or name a file
    that was cut short. Sets ``cfg.load_from`` (None starts from scratch, as mmengine does).
    """
    if not cfg.get('resume') or cfg.get('load_from'):
        return
    work_dir = cfg.get('work_dir')
    latest = latest_complete_checkpoint(work_dir) if work_dir else None
    pointer = osp.join(work_dir or '', 'last_checkpoint')
    named = open(pointer).read().strip() if osp.isfile(pointer) else ''
    if latest is None:
        cut = [name for name in sorted(os.listdir(work_dir)) if name.endswith('.pth')] \
            if work_dir and osp.isdir(work_dir) else []
        if cut:
            raise PreflightError(
                f'--resume: {work_dir} has checkpoints ({", ".join(cut[:5])}) but none is '
                'complete (cut short while being written, or not in torch\'s zip format); '
                'there is nothing to resume from. '
                'Pass --resume PATH to a complete checkpoint, or move them away to start over '
                "(default_hooks.checkpoint.type='AtomicCheckpointHook' prevents this)")
    elif named and osp.abspath(named) != osp.abspath(latest):
        print_log(f'last_checkpoint names {named!r}, which is missing or incomplete; '
                  f'resuming from {latest} instead', logger='current', level=logging.WARNING)
    cfg.load_from = latest


def check_resume_and_load_from(cfg: Config, mode: str = 'train') -> None:
    """``load_from`` / a ``--resume`` path / the checkpoint to test name a readable file."""
    path = cfg.get('load_from')
    if not path or '://' in str(path):
        return
    what = ('the checkpoint to test' if mode == 'test' else
            '--resume checkpoint' if cfg.get('resume') else 'load_from checkpoint')
    if not osp.isfile(path):
        raise PreflightError(f'{what} {path!r} does not exist; check the path')
    if not os.access(path, os.R_OK):
        raise PreflightError(f'{what} {path!r} cannot be read; check its permissions')


def _teacher_ckpt(cfg: Config) -> Optional[str]:
    model = cfg.get('model') or {}
    return model.get('teacher_ckpt') if isinstance(model, dict) else None


def check_teacher_checkpoint(cfg: Config) -> Optional[dict]:
    """``model.teacher_ckpt`` exists, is readable and safe; returns the loaded checkpoint.

    Raises :class:`kd_det.utils.checkpoint.UnsafeCheckpointError` (unchanged) for a file that
    pickles code.
    """
    path = _teacher_ckpt(cfg)
    model = cfg.get('model') or {}
    if not path:
        if isinstance(model, dict) and 'teacher' in model:
            print_log('model.teacher_ckpt is not set: the teacher starts from random weights '
                      'and teaches noise. Set it to the trained teacher checkpoint.',
                      logger='current', level=logging.WARNING)
        return None
    fix = ('Train the teacher first (python tools/train.py <teacher config>) or point '
           'model.teacher_ckpt at its checkpoint (--cfg-options model.teacher_ckpt=PATH)')
    if not osp.isfile(osp.expanduser(path)):
        raise PreflightError(f'teacher checkpoint {path!r} (model.teacher_ckpt) does not '
                             f'exist. {fix}')
    if not os.access(osp.expanduser(path), os.R_OK):
        raise PreflightError(f'teacher checkpoint {path!r} (model.teacher_ckpt) exists but '
                             'cannot be read; check its file permissions')
    try:
        return load_checkpoint_file(path, map_location='cpu')
    except RuntimeError as err:
        from kd_det.utils.checkpoint import UnsafeCheckpointError
        if isinstance(err, UnsafeCheckpointError):
            raise
        raise PreflightError(f'teacher checkpoint {path!r} (model.teacher_ckpt) cannot be '
                             f'loaded: {err}') from None


def _algorithm_class(model: dict):
    from mmrazor.registry import MODELS
    try:
        return MODELS.get(str(model.get('type', '')).split('.')[-1])
    except Exception:
        return None


def check_teacher_matches_config(cfg: Config) -> None:
    """The teacher checkpoint fits the teacher config, key for key.

    ``DetectionDistill`` checks this itself when it is built; mmrazor's algorithms load
    ``teacher_ckpt`` non-strictly (a wrong file only logs a warning and the teacher stays
    partly random), so for them the teacher is built here and loaded strictly.
    """
    path = _teacher_ckpt(cfg)
    model = cfg.get('model')
    if not path or not isinstance(model, dict) or 'teacher' not in model:
        return
    from kd_det.models.algorithms.detection_distill import DetectionDistill
    algorithm = _algorithm_class(model)
    if algorithm is not None and issubclass(algorithm, DetectionDistill):
        return
    from mmrazor.registry import MODELS

    from kd_det.models.utils.model_config import resolve_model_cfg
    teacher = MODELS.build(resolve_model_cfg(model['teacher']))
    load_state_dict_strict(teacher, path, role='teacher')


# ---- 4. classes --------------------------------------------------------------------------------
def _head_num_classes(model: dict) -> Dict[str, int]:
    """``{config path: num_classes}`` of the detection heads in a detector config."""
    found = {}
    for head in ('bbox_head', 'roi_head.bbox_head', 'mask_head', 'roi_head.mask_head'):
        node = model
        for key in head.split('.'):
            node = node.get(key) if isinstance(node, dict) else None
        for index, item in enumerate(node if isinstance(node, list) else [node]):
            if isinstance(item, dict) and isinstance(item.get('num_classes'), int):
                found[head if not isinstance(node, list) else f'{head}[{index}]'] = \
                    item['num_classes']
    return found


def _student_and_teacher(cfg: Config) -> Tuple[Optional[dict], Optional[dict]]:
    from kd_det.models.utils.model_config import resolve_model_cfg
    model = cfg.get('model') or {}
    if not isinstance(model, dict):
        return None, None
    if 'architecture' in model:
        student = resolve_model_cfg(model['architecture'])
        teacher = resolve_model_cfg(model['teacher']) if 'teacher' in model else None
        return (student if isinstance(student, dict) else None,
                teacher if isinstance(teacher, dict) else None)
    return model, None


def check_class_consistency(cfg: Config, teacher_checkpoint: Optional[dict] = None) -> None:
    """Student head, training data and teacher agree on the classes.

    Compares the student's and the teacher's head ``num_classes``, the student's head with the
    training dataset's classes, and the class names the teacher was trained on (the
    ``dataset_meta`` mmengine stores in every checkpoint) with the student's dataset.
    """
    student, teacher = _student_and_teacher(cfg)
    loader = cfg.get('train_dataloader') or {}
    classes = dataset_classes(loader.get('dataset')) if isinstance(loader, dict) else None
    student_heads = _head_num_classes(student or {})
    prefix = 'model.architecture.' if teacher is not None else 'model.'
    if classes is not None:
        for head, num in student_heads.items():
            if num != len(classes):
                raise PreflightError(
                    f'{prefix}{head}.num_classes={num} but the training dataset has '
                    f'{len(classes)} classes {_short(classes)}: set num_classes={len(classes)} '
                    '(or fix train_dataloader.dataset.metainfo.classes)')
    if teacher is None:
        return
    teacher_heads = _head_num_classes(teacher)
    for head in set(student_heads) & set(teacher_heads):
        if student_heads[head] != teacher_heads[head]:
            raise PreflightError(
                f'teacher and student predict different numbers of classes: teacher '
                f'{head}.num_classes={teacher_heads[head]}, student {student_heads[head]}. '
                'Distillation needs a teacher trained on the same classes: use a teacher '
                'config and checkpoint for this dataset')
    meta = (teacher_checkpoint or {}).get('meta') or {}
    teacher_classes = (meta.get('dataset_meta') or {}).get('classes')
    if teacher_classes is None or classes is None:
        return
    teacher_classes = tuple(teacher_classes)
    if teacher_classes == classes:
        return
    path = _teacher_ckpt(cfg)
    if len(teacher_classes) != len(classes):
        detail = (f'the teacher checkpoint was trained on {len(teacher_classes)} classes '
                  f'{_short(teacher_classes)}, the student trains on {len(classes)} '
                  f'{_short(classes)}')
    elif set(teacher_classes) == set(classes):
        detail = ('the teacher checkpoint has the same classes in a different order '
                  f'(teacher {_short(teacher_classes)}, student {_short(classes)}): its label '
                  'indices mean different classes')
    else:
        only_teacher = [c for c in teacher_classes if c not in classes]
        only_student = [c for c in classes if c not in teacher_classes]
        detail = (f'the class names differ: only the teacher has {_short(only_teacher)}, only '
                  f'the student has {_short(only_student)}')
    raise PreflightError(
        f'teacher checkpoint {path!r} does not fit the student\'s data: {detail}. Use a teacher '
        'trained on this dataset, or set train_dataloader.dataset.metainfo.classes to the '
        "teacher's classes in the teacher's order")


# ---- 5. feature shapes (dry run of the built model) -----------------------------------------
class DistillShapeError(PreflightError):
    """A distillation loss gets features its connector or loss cannot take."""


def _shape(value) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_shape(v) for v in value) + ']'
    return type(value).__name__


def _channels(value) -> Optional[int]:
    return value.shape[1] if isinstance(value, torch.Tensor) and value.dim() >= 2 else None


def _record_name(record: dict) -> str:
    role = 'student' if record.get('from_student') else 'teacher'
    level = f'[{record["data_idx"]}]' if record.get('data_idx') is not None else ''
    return f'{role} recorder {record.get("recorder")!r}{level}'


def _first_conv(module: nn.Module) -> Optional[nn.Module]:
    return next((m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)


def _checked_configurable_losses(distiller) -> Dict[str, torch.Tensor]:
    """mmrazor ``ConfigurableDistiller.compute_distill_losses``, one loss at a time, with the
    loss name, the level and the shapes in the error."""
    losses = {}
    for loss_name, mappings in distiller.loss_forward_mappings.items():
        kwargs, described = {}, []
        for key, record in mappings.items():
            raw_args = {k: v for k, v in record.items() if k not in ('connector',
                                                                      'connector_idx')}
            value = distiller.get_record(**raw_args)
            connector = record.get('connector')
            if connector:
                module = distiller.connectors[connector]
                try:
                    value = module(value)
                except Exception as err:
                    layer = _first_conv(module)
                    expects = getattr(layer, 'in_channels', getattr(layer, 'in_features', None))
                    fix = (f'set in_channel={_channels(value)} in '
                           f'model.distiller.connectors[{connector!r}]' if expects is not None
                           else f'fix model.distiller.connectors[{connector!r}]')
                    raise DistillShapeError(
                        f'distill loss {loss_name!r}, argument {key!r}: connector {connector!r} '
                        f'expects {expects} input channels but the {_record_name(record)} has '
                        f'shape {_shape(value)}: {fix} ({_first_line(err)})') from None
            if record.get('connector_idx') is not None:
                value = value[record['connector_idx']]
            via = f' via connector {connector!r}' if connector else ''
            described.append(f'{key}={_shape(value)} from the {_record_name(record)}{via}')
            kwargs[key] = value
        try:
            losses[loss_name] = distiller.distill_losses[loss_name](**kwargs)
        except Exception as err:
            tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
            fix = 'make the shapes match'
            channels = {_channels(t) for t in tensors}
            if len(channels) > 1:
                student = [k for k, r in mappings.items() if r.get('from_student')]
                teacher = [k for k, r in mappings.items() if not r.get('from_student')]
                if student and teacher and _channels(kwargs[student[0]]) is not None:
                    fix = (f'add a connector mapping {_channels(kwargs[student[0]])} -> '
                           f'{_channels(kwargs[teacher[0]])} channels to {student[0]!r} (e.g. '
                           f"dict(type='ConvModuleConnector', "
                           f'in_channel={_channels(kwargs[student[0]])}, '
                           f'out_channel={_channels(kwargs[teacher[0]])}, act_cfg=None)) or fix '
                           "the connector's out_channel")
            raise DistillShapeError(
                f'distill loss {loss_name!r} ({type(distiller.distill_losses[loss_name]).__name__})'
                f' cannot compare {"; ".join(described)}: {fix} ({_first_line(err)})') from None
    return losses


def dummy_detection_batch(batch_size: int = 2, height: int = 160, width: int = 192,
                          channels: int = 3):
    """Normalised images (N, C, H, W) and DetDataSamples with one GT box each."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    inputs = torch.randn(batch_size, channels, height, width)
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
            batch_input_shape=(height, width), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[width * 0.2, height * 0.2, width * 0.6, height * 0.7]]),
            labels=torch.zeros(1, dtype=torch.long))
        samples.append(sample)
    return inputs, samples


def check_distill_shapes(model: nn.Module) -> None:
    """Dry-run a distillation model on a dummy batch: every distill loss gets features it can
    compare. Raises :class:`DistillShapeError` naming the loss, the level and the shapes.

    Runs in eval mode without gradients and leaves the weights, BatchNorm statistics and the
    random generators as they were. Errors outside the distillation losses (an unusual
    detector that the dummy batch does not suit) are only logged: training would show them.
    """
    from mmengine.model import is_model_wrapper
    from mmrazor.models.distillers import ConfigurableDistiller
    algorithm = model.module if is_model_wrapper(model) else model
    distiller = getattr(algorithm, 'distiller', None)
    if distiller is None or not hasattr(algorithm, 'student') or not hasattr(algorithm, 'loss'):
        return
    generic = type(distiller).compute_distill_losses is \
        ConfigurableDistiller.compute_distill_losses
    original = distiller.compute_distill_losses

    def checked():
        if generic:
            return _checked_configurable_losses(distiller)
        try:
            return original()
        except Exception as err:
            raise DistillShapeError(
                f'{type(distiller).__name__} cannot compute its losses on a dummy batch: '
                f'{_first_line(err)}. Check that teacher and student necks give the same '
                'number of levels and that the heads predict the same classes') from err

    mean = getattr(getattr(algorithm, 'data_preprocessor', None), 'mean', None)
    channels = int(mean.numel()) if isinstance(mean, torch.Tensor) and mean.numel() > 1 else 3
    was_training = algorithm.training
    python_state, numpy_state = random.getstate(), np.random.get_state()
    distiller.compute_distill_losses = checked
    algorithm.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            algorithm.loss(*dummy_detection_batch(channels=channels))
    except DistillShapeError:
        raise
    except Exception as err:
        print_log(f'the distillation dry run on a dummy batch did not complete '
                  f'({type(err).__name__}: {_first_line(err)}); feature shapes are checked at '
                  'the first training step instead', logger='current', level=logging.WARNING)
    finally:
        del distiller.compute_distill_losses
        algorithm.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


# ---- helpers -----------------------------------------------------------------------------------
def _short(names: Sequence, limit: int = 6) -> str:
    names = list(names)
    more = f', ... ({len(names)} in all)' if len(names) > limit else ''
    return '(' + ', '.join(repr(n) for n in names[:limit]) + more + ')'


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
