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
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from kd_det.utils.checkpoint import (latest_complete_checkpoint, load_checkpoint_file,
                                     load_state_dict_strict, local_checkpoint_file)

CHECKS = ('types', 'datasets', 'checkpoints', 'teacher', 'classes', 'shapes')
DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader', )}
# `type` values that are not registry names: mmcv's batched_nms evaluates nms_cfg['type'], and
# mmdet's RoI extractors take `roi_layer.type` from mmcv.ops.
NMS_TYPES = ('nms', 'soft_nms', 'nms_rotated', 'nms_quadri')


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
# Keys mmdet reads from every entry of a COCO file (pycocotools' index, CocoDataset's
# parse_data_info): without one it stops with a bare KeyError. The evaluator's ann_file also
# needs what pycocotools' COCOeval reads from every ground-truth box.
COCO_KEYS = {'images': ('id', 'file_name', 'width', 'height'), 'categories': ('id', 'name'),
             'annotations': ('id', 'image_id', 'category_id', 'bbox', 'area')}
COCO_EVAL_KEYS = {'annotations': ('iscrowd', )}
COCO_KEY_FIXES = {
    'images.id': 'give every image a unique integer "id" (annotations refer to it)',
    'images.file_name': 'add "file_name", the image path below data_root + data_prefix.img',
    'images.width': 'add the image size in pixels ("width" and "height")',
    'images.height': 'add the image size in pixels ("width" and "height")',
    'categories.id': 'give every category a unique integer "id"',
    'categories.name': 'add the class "name" of every category',
    'annotations.id': 'give every annotation a unique integer "id"',
    'annotations.image_id': 'add "image_id", the id of the image the box is in',
    'annotations.category_id': 'add "category_id", the id of the category of the box',
    'annotations.bbox': 'add "bbox": [x, y, width, height]',
    'annotations.area': 'add "area": width * height of the bbox (mmdet drops boxes with area '
                        '<= 0; COCO evaluation uses it for small/medium/large)',
    'annotations.iscrowd': 'add "iscrowd": 0 (1 marks a crowd region that evaluation ignores)',
}
EXAMPLES = 3  # file names quoted in a message


def _type_name(node: dict) -> str:
    return str(node.get('type', '')).split('.')[-1]


def _leaf_datasets(dataset: dict, path: str,
                   skipping: bool = False) -> Iterator[Tuple[str, dict, bool]]:
    """The datasets that read files, below wrappers (``dataset=``/``datasets=``), each with
    whether a ``FaultTolerantDataset(strict=False)`` above it skips its unreadable images (it
    never does in test mode)."""
    if not isinstance(dataset, dict):
        return
    skipping = skipping or (_type_name(dataset) == 'FaultTolerantDataset' and
                            not dataset.get('strict', False))
    if isinstance(dataset.get('dataset'), dict):
        yield from _leaf_datasets(dataset['dataset'], f'{path}.dataset', skipping)
    elif isinstance(dataset.get('datasets'), (list, tuple)):
        for index, child in enumerate(dataset['datasets']):
            yield from _leaf_datasets(child, f'{path}.datasets[{index}]', skipping)
    else:
        yield path, dataset, skipping and not dataset.get('test_mode', False)


def _resolve(data_root: str, path: str) -> str:
    """``path`` as mmengine's BaseDataset resolves it (relative paths below data_root)."""
    if osp.isabs(path) or not data_root:
        return path
    return osp.join(data_root, path)


def _default_classes(dataset: dict) -> Optional[Tuple[str, ...]]:
    from mmdet.registry import DATASETS
    try:
        dataset_cls = DATASETS.get(_type_name(dataset))
    except Exception:
        return None
    classes = getattr(dataset_cls, 'METAINFO', {}).get('classes') if dataset_cls else None
    return tuple(classes) if classes else None


def dataset_classes(dataset: dict) -> Optional[Tuple[str, ...]]:
    """The class names a dataset config trains on: ``metainfo.classes``, else the dataset
    type's default (``CocoDataset``: the 80 COCO classes)."""
    for _, leaf, _ in _leaf_datasets(dataset, ''):
        classes = (leaf.get('metainfo') or {}).get('classes')
        return tuple(classes) if classes else _default_classes(leaf)
    return None


def _is_xywh(box) -> bool:
    return isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)


def _others(count: int, total: int, section: str) -> str:
    if count <= 1:
        return ''
    return f' (nor do {"all " if count == total else ""}{count - 1} other {section})'


def _coco_key_problems(coco: dict, required: Dict[str, Tuple[str, ...]]) -> List[str]:
    """One line per problem mmdet would stop at, with the fix: keys missing from entries
    (the first such entry and how many) and boxes that are not [x, y, width, height]."""
    lines = []
    for section, keys in required.items():
        entries = coco.get(section, [])
        wanted = set(keys)
        missing: Dict[str, List[int]] = {}  # key: [first index, count]
        bad_boxes = []
        for index, entry in enumerate(entries):
            entry = entry if isinstance(entry, dict) else {}
            if not wanted <= entry.keys():
                for key in keys:
                    if key not in entry:
                        missing.setdefault(key, [index, 0])[1] += 1
            if 'bbox' in entry and not _is_xywh(entry['bbox']):
                bad_boxes.append(index)
        groups: Dict[Tuple[int, int], List[str]] = {}
        for key, (first, count) in missing.items():
            groups.setdefault((first, count), []).append(key)
        for (first, count), names in groups.items():
            fixes = dict.fromkeys(COCO_KEY_FIXES[f'{section}.{name}'] for name in names)
            lines.append(f'  {section}[{first}] has no {", ".join(names)}'
                         f'{_others(count, len(entries), section)}: {"; ".join(fixes)}')
        if bad_boxes:
            first = bad_boxes[0]
            lines.append(f'  {section}[{first}] has bbox {entries[first]["bbox"]!r}, not '
                         f'[x, y, width, height]{_others(len(bad_boxes), len(entries), section)}')
    return lines


def _sorted_ids(ids) -> list:
    try:
        return sorted(set(ids))
    except TypeError:  # ids of mixed types
        return sorted(set(ids), key=repr)


def _check_category_ids(coco: dict, ann_file: str, where: str) -> None:
    """Every annotation's category_id is the id of one of the file's categories.

    mmdet keeps the boxes whose category_id is the id of a configured class and drops the
    others without a word, so 0-based ids against 1-based categories train every box as the
    class before its own and lose class 0, and ids that match nothing train on no box at all.
    """
    category_ids = {cat['id'] for cat in coco['categories']}
    annotations = coco.get('annotations', [])
    unknown = [ann['category_id'] for ann in annotations
               if ann['category_id'] not in category_ids]
    if not unknown:
        return
    used = _sorted_ids(ann['category_id'] for ann in annotations)
    found = (f'{len(unknown)} of the {len(annotations)} annotations of {ann_file} have a '
             'category_id that is not the id of one of its categories: the annotations use '
             f'category ids {_short(used, 10)}, the categories have ids '
             f'{_short(_sorted_ids(category_ids), 10)}.')
    if all(isinstance(i, int) for i in used) and {i + 1 for i in used} <= category_ids:
        raise PreflightError(
            f'{where}: {found} The annotation ids look 0-based (each is a category id - 1): '
            "mmdet would drop the boxes of category_id 0 and train every other box as the "
            "class before its own. Add 1 to every annotation's category_id (or fix the "
            'script that wrote the file)')
    raise PreflightError(
        f'{where}: {found} mmdet drops the boxes with unknown ids without a word. Set each '
        "annotation's category_id to the id of its category in \"categories\" (was the file "
        'written for another category list?)')


def load_coco_json(ann_file: str, where: str, evaluated: bool = False) -> dict:
    """Read a COCO annotation file, raising :class:`PreflightError` if it is not valid COCO:
    a key mmdet reads is missing (``evaluated``: also those COCO evaluation reads), a box is
    not [x, y, width, height], or a category_id is not the id of a category."""
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
    required = {section: keys + (COCO_EVAL_KEYS.get(section, ()) if evaluated else ())
                for section, keys in COCO_KEYS.items()}
    problems = _coco_key_problems(coco, required)
    if problems:
        raise PreflightError(f'{where}: {ann_file} is not valid COCO (mmdet reads these from '
                             'every entry and would stop with a bare KeyError or TypeError):\n'
                             + '\n'.join(problems))
    _check_category_ids(coco, ann_file, where)
    return coco


def _examples(items: Sequence[str], separator: str = ', ') -> str:
    more = f' (and {len(items) - EXAMPLES} more)' if len(items) > EXAMPLES else ''
    return separator.join(items[:EXAMPLES]) + more


def check_image_files(paths: Sequence[str], where: str, ann_file: str, location: str,
                      skips_bad_images: bool = False, evaluated: bool = False) -> None:
    """Every image ``paths`` lists exists; for an ``evaluated`` (validation/test) dataset each
    one is also complete (JPEG/PNG end marker present), since a truncated image would be
    evaluated silently on its decodable part.

    A training dataset whose ``FaultTolerantDataset(strict=False)`` skips unreadable images
    (``skips_bad_images``) only warns about missing files, unless none exists at all.
    ``location`` says how the paths were made (data_root, data_prefix).
    """
    missing = [path for path in paths if not osp.isfile(path)]
    listed = f'the {len(paths)} images listed in {ann_file}'
    if missing and len(missing) == len(paths):
        raise PreflightError(
            f'{where}: none of {listed} exist, e.g. {missing[0]} ({location}). Set data_root '
            'and data_prefix.img so that they + file_name give the image paths')
    do_not = 'does not' if len(missing) == 1 else 'do not'
    if missing and skips_bad_images:
        print_log(f'{where}: {len(missing)} of {listed} {do_not} exist: {_examples(missing)} '
                  f'({location}). FaultTolerantDataset (strict=False) skips them; restore them '
                  'or remove them from the annotation file', logger='current',
                  level=logging.WARNING)
    elif missing:
        skip_hint = ('' if evaluated else '; or wrap the training dataset in '
                     "dict(type='FaultTolerantDataset', strict=False, dataset=...) to skip them")
        raise PreflightError(
            f'{where}: {len(missing)} of {listed} {do_not} exist: {_examples(missing)} '
            f'({location}); the run would stop when it reaches the first one. Restore them or '
            f'remove them from the annotation file{skip_hint}')
    if not evaluated:
        return
    from kd_det.datasets.data_faults import image_file_fault
    faults = [f'{path}: {fault}' for path, fault in ((p, image_file_fault(p)) for p in paths)
              if fault is not None]
    if faults:
        raise PreflightError(
            f'{where}: {len(faults)} of {listed} {"is" if len(faults) == 1 else "are"} '
            f'incomplete or unreadable: {_examples(faults, "; ")}. '
            'Evaluating them would change the metric silently (OpenCV decodes the part of a '
            'cut image that is there); copy them again from the source, or remove them from the '
            'annotation file')


def check_coco_dataset(dataset: dict, where: str, skips_bad_images: bool = False,
                       evaluated: bool = False) -> Optional[int]:
    """A COCO dataset config: the annotation file is valid, every image it lists exists (and is
    complete, for an ``evaluated`` dataset; see :func:`check_image_files`), and its categories
    include the configured classes.

    Returns:
        The number of boxes of the configured classes in a training dataset, None for a
        dataset in test mode or one this check cannot read.
    """
    data_root = dataset.get('data_root') or ''
    if not dataset.get('ann_file'):
        return None
    ann_file = _resolve(data_root, dataset['ann_file'])
    if not osp.isfile(ann_file):
        raise PreflightError(
            f'{where}.ann_file: {ann_file} does not exist (data_root={data_root!r}, '
            f'ann_file={dataset.get("ann_file")!r}). Set data_root/ann_file to your annotation '
            'file; the embedded dataset is made with '
            '`python -m kd_det.datasets.synthetic --out data/synthetic`')
    if not ann_file.endswith('.json'):
        return None
    coco = load_coco_json(ann_file, f'{where}.ann_file')
    images = coco['images']
    if not images:
        raise PreflightError(f'{where}: {ann_file} lists no images; the dataset is empty. '
                             'Point ann_file at the annotation file of your images')
    img_prefix = (dataset.get('data_prefix') or {}).get('img', '') or ''
    check_image_files(
        [osp.join(_resolve(data_root, img_prefix), img['file_name']) for img in images], where,
        ann_file, f'data_root={data_root!r}, data_prefix.img={img_prefix!r} + file_name',
        skips_bad_images, evaluated)
    categories = [cat['name'] for cat in coco['categories']]
    classes = dataset_classes(dataset)
    if classes is None:
        return None
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
    if dataset.get('test_mode'):
        return None
    wanted = {cat['id'] for cat in coco['categories'] if cat['name'] in classes}
    return sum(ann['category_id'] in wanted for ann in coco.get('annotations', []))


def _check_training_boxes(checked: Sequence[Tuple[str, dict, Optional[int]]],
                          where: str) -> None:
    """The training set has boxes of the configured classes, in one of its datasets at least.

    Without any, mmdet trains on background only (with ``filter_empty_gt=False``) or on no
    image at all (``filter_empty_gt=True``), and the loss looks fine either way.
    """
    if not checked or any(boxes is None or boxes > 0 for _, _, boxes in checked):
        return
    files = ', '.join(dict.fromkeys(_resolve(d.get('data_root') or '', d['ann_file'])
                                    for _, d, _ in checked))
    if len(checked) == 1:
        where = checked[0][0]
    filtered = any((d.get('filter_cfg') or {}).get('filter_empty_gt') for _, d, _ in checked)
    consequence = ('filter_cfg.filter_empty_gt=True would leave no image to train on' if filtered
                   else 'the model would learn background only')
    raise PreflightError(
        f'{where}: {files} has no boxes of the configured classes '
        f'{_short(dataset_classes(checked[0][1]) or ())}: {consequence}. Check that '
        'metainfo.classes names the categories the annotations use, and that the annotation '
        'file is the one with the boxes')


def check_datasets(cfg: Config, mode: str = 'train') -> None:
    """Each dataloader's dataset (and the COCO evaluator's ann_file) is usable."""
    for loader_name in DATALOADERS[mode]:
        loader = cfg.get(loader_name)
        if not isinstance(loader, dict) or (loader_name == 'val_dataloader' and
                                            cfg.get('val_cfg') is None):
            continue
        evaluated = loader_name != 'train_dataloader'
        checked = [(path, dataset, check_coco_dataset(dataset, path, skips, evaluated))
                   for path, dataset, skips in _leaf_datasets(loader.get('dataset'),
                                                              f'{loader_name}.dataset')]
        if not evaluated:
            _check_training_boxes(checked, f'{loader_name}.dataset')
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
                load_coco_json(ann_file, where, evaluated=True)


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
    """``load_from`` / a ``--resume`` path / the checkpoint to test name a readable file (a
    URL is downloaded into torch's hub cache here, once)."""
    path = cfg.get('load_from')
    if not path:
        return
    what = ('the checkpoint to test' if mode == 'test' else
            '--resume' if cfg.get('resume') else 'load_from')
    try:
        local_checkpoint_file(path, key=what)
    except (FileNotFoundError, PermissionError) as err:
        raise PreflightError(str(err)) from None


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
    try:
        local_checkpoint_file(path, key='model.teacher_ckpt')
    except FileNotFoundError as err:
        raise PreflightError(f'teacher {err}' + ('' if osp.isdir(path) else f'. {fix}')) \
            from None
    except PermissionError as err:
        raise PreflightError(f'teacher {err}') from None
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
                          channels: int = 3, device='cpu'):
    """Normalised images (N, C, H, W) and DetDataSamples with one GT box each, on ``device``
    (drawn on the CPU, so a GPU's random generator is not touched)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    inputs = torch.randn(batch_size, channels, height, width).to(device)
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
            batch_input_shape=(height, width), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[width * 0.2, height * 0.2, width * 0.6, height * 0.7]],
                                device=device),
            labels=torch.zeros(1, dtype=torch.long, device=device))
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
                f'{type(err).__name__}: {_first_line(err)} (raised in {_origin(err)}; the '
                'traceback above shows the whole chain)') from err

    mean = getattr(getattr(algorithm, 'data_preprocessor', None), 'mean', None)
    channels = int(mean.numel()) if isinstance(mean, torch.Tensor) and mean.numel() > 1 else 3
    was_training = algorithm.training
    python_state, numpy_state = random.getstate(), np.random.get_state()
    distiller.compute_distill_losses = checked
    algorithm.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            # on the model's device: a GPU model given CPU tensors failed on every --amp run
            device = next(algorithm.parameters()).device
            algorithm.loss(*dummy_detection_batch(channels=channels, device=device))
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


def _origin(err: BaseException) -> str:
    """``file.py:line in function`` of the innermost frame that raised ``err``."""
    import traceback
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return 'an unknown place'
    frame = frames[-1]
    return f'{osp.basename(frame.filename)}:{frame.lineno} in {frame.name}'


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
