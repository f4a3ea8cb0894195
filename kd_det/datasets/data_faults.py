"""Bad training data reported by file name and skipped (or, with ``strict=True``, fatal).

Two faults stop long runs on real data: an image that is corrupt or truncated (a half-copied
JPEG decodes silently with a grey bottom; a broken PNG crashes the loader with
``'NoneType' object has no attribute 'shape'``), and a box with zero or negative size (mmdet's
COCO parser drops it without a word; other formats pass it on to the loss). Both are handled
by wrapping the training dataset, with no pipeline change::

    train_dataloader = dict(dataset=dict(
        _delete_=True, type='FaultTolerantDataset', strict=False,
        dataset=_base_.train_dataloader.dataset))
    custom_hooks = [dict(type='DataFaultHook')]  # counts in every log line

:class:`FaultTolerantDataset` loads images through :class:`SafeLoadImageFromFile` (it upgrades
``LoadImageFromFile`` in the wrapped pipeline), skips a bad image for the next one, drops bad
boxes, and warns with the file name. Every returned sample lists the faults met while fetching
it in ``data_samples.metainfo['data_faults']``, which is how :class:`DataFaultHook` counts them
in the main process even when data loading runs in worker processes. Images without objects are
not faults: they train as negatives.
"""
import copy
import json
import logging
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine import fileio
from mmengine.logging import print_log

FAULTS_KEY = 'data_faults'
IMAGE_FAULT = 'image'
BOX_FAULT = 'box'
# A complete JPEG ends its image with the EOI marker, a PNG with the IEND chunk (length 0,
# type, constant CRC). Cameras and tools may append bytes after them (a second JPEG of a
# multi-picture file, maker data, zero padding), so a file that does not end with its marker is
# parsed to find where the image ends.
_JPEG_SOI, _JPEG_EOI = b'\xff\xd8', b'\xff\xd9'
_PNG_SIGNATURE, _PNG_IEND = b'\x89PNG\r\n\x1a\n', b'\x00\x00\x00\x00IEND\xaeB`\x82'
# a marker after entropy-coded data: 0xFF followed by neither a stuffed 0x00 nor RST0-RST7
_JPEG_MARKER = re.compile(rb'\xff[^\x00\xd0-\xd7]')
_JPEG_STANDALONE = frozenset([0x01, *range(0xd0, 0xd8)])  # TEM, RST0-RST7: no length field


class DataFaultError(RuntimeError):
    """A training sample that cannot be used as it is.

    Attributes:
        file_name (str): the image file.
        reason (str): what is wrong with it.
        kind (str): ``'image'`` (the image is skipped) or ``'box'`` (the box is dropped).
    """

    def __init__(self, file_name: str, reason: str, kind: str = IMAGE_FAULT):
        self.file_name, self.reason, self.kind = str(file_name), reason, kind
        super().__init__(f'{file_name}: {reason}')


def _jpeg_end(data: bytes) -> Optional[int]:
    """Offset just past the EOI marker that ends the JPEG in ``data``, None if it has none.

    Walks the marker segments by their lengths, so a JPEG embedded in a segment (the EXIF
    thumbnail) does not count, and the entropy-coded data after each SOS up to the next marker.
    """
    pos = len(_JPEG_SOI)
    while pos + 1 < len(data):
        if data[pos] != 0xff:  # bytes between segments: resynchronise as decoders do
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                return None
            pos = match.start()
            continue
        marker = data[pos + 1]
        if marker == 0xff:  # fill byte
            pos += 1
        elif marker == 0xd9:
            return pos + 2
        elif marker in _JPEG_STANDALONE:
            pos += 2
        elif pos + 4 > len(data):
            return None
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
            if marker == 0xda:  # start of scan: entropy-coded data up to the next marker
                match = _JPEG_MARKER.search(data, pos)
                if match is None:
                    return None
                pos = match.start()
    return None


def _png_end(data: bytes) -> Optional[int]:
    """Offset just past the IEND chunk of the PNG in ``data``, None if the chunks stop short."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        end = pos + 12 + int.from_bytes(data[pos:pos + 4], 'big')  # length, type, data, CRC
        if end > len(data):
            return None
        if data[pos + 4:pos + 8] == b'IEND':
            return end
        pos = end
    return None


def _ends_with_its_marker(head: bytes, tail: bytes) -> bool:
    """True unless ``head`` starts a JPEG/PNG whose ``tail`` is not its end marker."""
    if head.startswith(_JPEG_SOI):
        return tail.endswith(_JPEG_EOI)
    if head.startswith(_PNG_SIGNATURE):
        return tail.endswith(_PNG_IEND)
    return True


def image_bytes_fault(data: bytes) -> Optional[str]:
    """Why ``data`` is not a complete image file, or None if nothing is visibly wrong.

    Catches empty files and truncated JPEG/PNG files (no end marker where the image data
    ends), which decoders either reject with an unhelpful error or, for JPEG, decode silently
    with missing rows. Bytes after the end marker are fine.
    """
    if not data:
        return 'the file is empty (0 bytes)'
    if _ends_with_its_marker(data[:len(_PNG_SIGNATURE)], data[-len(_PNG_IEND):]):
        return None
    if data.startswith(_JPEG_SOI) and _jpeg_end(data) is None:
        return f'truncated JPEG ({len(data)} bytes, no end-of-image marker)'
    if data.startswith(_PNG_SIGNATURE) and _png_end(data) is None:
        return f'truncated PNG ({len(data)} bytes, no IEND chunk)'
    return None


def image_file_fault(path: str) -> Optional[str]:
    """:func:`image_bytes_fault` of a local file, reading only its first and last bytes when it
    ends with its end marker (nearly always), the whole file otherwise; for a file that cannot
    be read, why."""
    try:
        with open(path, 'rb') as f:
            head = f.read(len(_PNG_SIGNATURE))
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - len(_PNG_IEND)))
            if size and _ends_with_its_marker(head, f.read()):
                return None
            f.seek(0)
            return image_bytes_fault(f.read())
    except OSError as err:
        return f'the file cannot be read ({err})'


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises :class:`DataFaultError` naming the file and the fault.

    Missing, empty, truncated (JPEG/PNG end marker absent) and undecodable files are refused
    instead of crashing later or training on a half image. Same arguments as mmcv's
    ``LoadImageFromFile``; ``ignore_empty`` is honoured for missing files.
    """

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                img_bytes = fileio.FileClient.infer_client(self.file_client_args,
                                                           filename).get(filename)
            else:
                img_bytes = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            if self.ignore_empty:
                return None
            raise DataFaultError(filename, 'the file does not exist') from None
        except OSError as err:
            raise DataFaultError(filename, f'the file cannot be read ({err})') from None
        fault = image_bytes_fault(img_bytes)
        if fault is not None:
            raise DataFaultError(filename, fault)
        try:
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
        except Exception as err:  # decoders raise assorted errors on garbage
            raise DataFaultError(filename, f'cannot be decoded as an image ({err})') from None
        if img is None or img.size == 0:
            raise DataFaultError(filename, 'cannot be decoded as an image')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


def coco_box_faults(ann_file: str, classes: Optional[Sequence[str]] = None,
                    img_prefix: str = '') -> List[DataFaultError]:
    """Boxes of a COCO file that mmdet's ``CocoDataset`` drops without a word.

    Those are boxes with zero or negative width or height (or under 1 px), a non-positive
    ``area``, or no overlap with their image. Only boxes of ``classes`` (all if None) count;
    file names are given below ``img_prefix``.
    """
    with open(ann_file) as f:
        coco = json.load(f)
    images = {img['id']: img for img in coco.get('images', [])}
    wanted = None
    if classes is not None:
        wanted = {cat['id'] for cat in coco.get('categories', []) if cat['name'] in classes}
    faults = []
    for ann in coco.get('annotations', []):
        if ann.get('ignore', False) or (wanted is not None and ann['category_id'] not in wanted):
            continue
        img = images.get(ann['image_id'], {})
        x1, y1, w, h = ann['bbox']
        width, height = img.get('width', float('inf')), img.get('height', float('inf'))
        inter_w = max(0, min(x1 + w, width) - max(x1, 0))
        inter_h = max(0, min(y1 + h, height) - max(y1, 0))
        if w <= 0 or h <= 0:
            reason = 'zero or negative size'
        elif w < 1 or h < 1:
            reason = 'smaller than 1 px'
        elif inter_w * inter_h == 0:
            reason = 'entirely outside the image'
        elif ann.get('area', 1) <= 0:
            reason = f'area {ann.get("area")} <= 0'
        else:
            continue
        faults.append(DataFaultError(
            osp.join(img_prefix, img['file_name']) if 'file_name' in img else
            f'image id {ann["image_id"]}',
            f'box {[x1, y1, w, h]} (annotation id {ann.get("id")}, x, y, w, h) has {reason}',
            kind=BOX_FAULT))
    return faults


def invalid_box_mask(bboxes) -> torch.Tensor:
    """(N, ) True for (x1, y1, x2, y2) boxes with zero/negative width or height or non-finite."""
    boxes = getattr(bboxes, 'tensor', bboxes)
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return ~(torch.isfinite(boxes).all(dim=1) & (width > 0) & (height > 0))


def _upgrade_image_loading(pipeline: Sequence[Union[dict, object]]) -> list:
    upgraded = []
    for transform in pipeline:
        if isinstance(transform, dict) and str(transform.get('type', '')).split('.')[-1] == \
                'LoadImageFromFile':
            transform = dict(transform, type='SafeLoadImageFromFile')
        upgraded.append(transform)
    return upgraded


def _summary(faults: Sequence[DataFaultError], limit: int = 5) -> str:
    lines = [f'  {fault}' for fault in faults[:limit]]
    if len(faults) > limit:
        lines.append(f'  ... and {len(faults) - limit} more')
    return '\n'.join(lines)


@DATASETS.register_module()
class FaultTolerantDataset:
    """Wraps a detection dataset so corrupt images and bad boxes are reported, not fatal.

    * A corrupt, truncated, empty or missing image (:class:`SafeLoadImageFromFile`, which
      replaces ``LoadImageFromFile`` in the wrapped pipeline) is skipped for the next image of
      the dataset, with a warning naming the file.
    * Boxes with zero or negative size are dropped from their image with a warning; for COCO
      annotation files they are listed once when the dataset is built (mmdet's parser would drop
      them silently), for other formats when the image is loaded.
    * In test mode (validation) nothing is skipped: a bad image raises, since skipping would
      change the metric.

    Args:
        dataset (dict | Dataset): the dataset to wrap (config or instance).
        strict (bool): raise :class:`DataFaultError` at the first fault instead of skipping.
            Defaults to False.
        max_consecutive (int): give up after this many bad images in a row (the data is
            probably not there at all). Defaults to 50.
        check_coco_boxes (bool): scan a COCO ``ann_file`` for boxes mmdet drops silently.
            Defaults to True.
    """

    def __init__(self, dataset: Union[dict, object], strict: bool = False,
                 max_consecutive: int = 50, check_coco_boxes: bool = True):
        if isinstance(dataset, dict):
            dataset = copy.deepcopy(dataset)
            if 'pipeline' in dataset:
                dataset['pipeline'] = _upgrade_image_loading(dataset['pipeline'])
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.strict = strict
        self.max_consecutive = max_consecutive
        self.box_faults: List[DataFaultError] = []
        ann_file = getattr(dataset, 'ann_file', '')
        if check_coco_boxes and str(ann_file).endswith('.json') and osp.isfile(ann_file):
            img_prefix = (getattr(dataset, 'data_prefix', None) or {}).get('img', '')
            self.box_faults = coco_box_faults(ann_file, dataset.metainfo.get('classes'),
                                              img_prefix)
        if self.box_faults:
            count = len(self.box_faults)
            message = (f'{count} box{"es" if count > 1 else ""} in {ann_file} cannot be '
                       f'trained on:\n'
                       f'{_summary(self.box_faults)}')
            if strict:
                raise DataFaultError(self.box_faults[0].file_name,
                                     message + '\nFix or remove these annotations, or set '
                                     'strict=False in FaultTolerantDataset to drop them.',
                                     kind=BOX_FAULT)
            print_log(message + '\nThey are dropped (set strict=True to stop instead).',
                      logger='current', level=logging.WARNING)

    # --- the Dataset interface mmengine's samplers, loops and evaluators use ---
    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    @property
    def test_mode(self) -> bool:
        return bool(getattr(self.dataset, 'test_mode', False))

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        # anything else (cat_ids, data_list, ...) is the wrapped dataset's
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, idx: int) -> dict:
        faults: List[DataFaultError] = []
        for attempt in range(self.max_consecutive + 1):
            index = (idx + attempt) % len(self.dataset)
            try:
                data = self.dataset[index]
            except DataFaultError as fault:
                if self.strict or self.test_mode:
                    hint = ('' if self.test_mode else
                            ' (set strict=False in FaultTolerantDataset to skip bad images)')
                    raise DataFaultError(fault.file_name, fault.reason + hint) from None
                print_log(f'skipped a bad training image: {fault}', logger='current',
                          level=logging.WARNING)
                faults.append(fault)
                continue
            faults += self._drop_bad_boxes(data)
            if faults:
                data['data_samples'].set_metainfo(
                    {FAULTS_KEY: [(f.kind, f.file_name, f.reason) for f in faults]})
            return data
        raise RuntimeError(
            f'{len(faults)} images in a row could not be loaded (last: {faults[-1]}); check '
            'data_root and data_prefix in the dataset config')

    def _drop_bad_boxes(self, data: dict) -> List[DataFaultError]:
        sample = data.get('data_samples')
        instances = getattr(sample, 'gt_instances', None)
        if instances is None or 'bboxes' not in instances:
            return []
        invalid = invalid_box_mask(instances.bboxes)
        if not bool(invalid.any()):
            return []
        file_name = sample.metainfo.get('img_path', '?')
        boxes = getattr(instances.bboxes, 'tensor', instances.bboxes)[invalid]
        fault = DataFaultError(
            file_name, f'{int(invalid.sum())} boxes with zero or negative size '
            f'(x1, y1, x2, y2 after the pipeline: {boxes[:3].tolist()})', kind=BOX_FAULT)
        if self.strict:
            raise DataFaultError(fault.file_name, fault.reason + ' (set strict=False in '
                                 'FaultTolerantDataset to drop such boxes)', BOX_FAULT)
        print_log(f'dropped bad boxes: {fault}', logger='current', level=logging.WARNING)
        sample.gt_instances = instances[~invalid]
        return [fault]


def faults_of_batch(data_samples: Sequence) -> List[Tuple[str, str, str]]:
    """``(kind, file_name, reason)`` of every fault recorded in a batch's data samples."""
    found: List[Tuple[str, str, str]] = []
    for sample in data_samples or ():
        found += list(getattr(sample, 'metainfo', {}).get(FAULTS_KEY, ()))
    return found


def skipped_image_files(faults: Sequence[Tuple[str, str, str]]) -> Set[str]:
    """The image files skipped in ``faults``, each once however often it was met."""
    return {file_name for kind, file_name, _ in faults if kind == IMAGE_FAULT}


def count_faults(faults: Sequence[Tuple[str, str, str]]) -> Dict[str, int]:
    """Number of skip events (an image met twice counts twice) and dropped-box faults in
    ``faults``."""
    return {IMAGE_FAULT: sum(kind == IMAGE_FAULT for kind, _, _ in faults),
            BOX_FAULT: sum(kind == BOX_FAULT for kind, _, _ in faults)}
