"""Pre-flight check ``datasets``: the annotation files are valid COCO, their category ids and
the configured classes agree, and the images they list exist (and are complete, for
evaluation)."""
import difflib
import json
import logging
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from kd_det.preflight.errors import PreflightError, _first_line, _short

DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader', )}
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
