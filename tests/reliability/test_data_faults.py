"""Corrupt images and bad boxes are reported by file name, skipped and counted (or fatal)."""
import json
import logging
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from kd_det.apis.runner import build_train_runner
from kd_det.datasets.data_faults import (DataFaultError, FaultTolerantDataset,
                                         SafeLoadImageFromFile, image_bytes_fault)
from kd_det.engine.hooks.data_fault_hook import DROPPED_BOXES, SKIPPED_IMAGES
from reliability_helpers import (STUDENT_CONFIG, child_config, options, own_data,  # noqa: F401
                                 tiny_data)

# the documented config lines (docs/reliability.md)
WRAPPED = '\n'.join([
    'train_dataloader = dict(dataset=dict(',
    "    _delete_=True, type='FaultTolerantDataset', strict={strict},",
    '    dataset=_base_.train_dataloader.dataset))',
    "custom_hooks = [dict(type='DataFaultHook')]",
])


def _image(tmp_path, suffix):
    img = (np.random.RandomState(0).rand(40, 50, 3) * 255).astype(np.uint8)
    path = str(tmp_path / f'img{suffix}')
    cv2.imwrite(path, img)
    return path


@pytest.mark.parametrize('suffix', ['.png', '.jpg'])
def test_truncated_images_are_refused_with_their_name(tmp_path, suffix):
    path = _image(tmp_path, suffix)
    data = open(path, 'rb').read()
    assert image_bytes_fault(data) is None
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(DataFaultError, match=f'img{suffix}: truncated '
                       f'{"PNG" if suffix == ".png" else "JPEG"}'):
        SafeLoadImageFromFile().transform(dict(img_path=path))


@pytest.mark.parametrize('content, reason', [
    (b'', 'the file is empty'), (b'not an image at all' * 10, 'cannot be decoded as an image')])
def test_empty_and_garbage_files_are_refused(tmp_path, content, reason):
    path = tmp_path / 'bad.png'
    path.write_bytes(content)
    with pytest.raises(DataFaultError, match=f'bad.png: {reason}'):
        SafeLoadImageFromFile().transform(dict(img_path=str(path)))


def test_missing_file_is_refused_and_good_file_loads_like_mmcv(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    with pytest.raises(DataFaultError, match='nope.png: the file does not exist'):
        SafeLoadImageFromFile().transform(dict(img_path=str(tmp_path / 'nope.png')))
    path = _image(tmp_path, '.png')
    ours = SafeLoadImageFromFile().transform(dict(img_path=path))
    theirs = LoadImageFromFile().transform(dict(img_path=path))
    assert np.array_equal(ours['img'], theirs['img']) and ours['img_shape'] == (40, 50)


def _truncate_image(root, name='train/000003.png'):
    path = osp.join(root, name)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 3])
    return name


def _train(config, root, tmp_path, epochs=1, **extra):
    opts = options(root, epochs=epochs, prefix='dataset.', **extra)
    runner = build_train_runner(config, work_dir=str(tmp_path / 'wd'), cfg_options=opts)
    runner.train()
    return runner


def _log(tmp_path):
    logs = [p for p in (tmp_path / 'wd').rglob('*.log')]
    return logs[0].read_text()


def test_corrupt_image_is_skipped_with_a_warning_and_counted(own_data, tmp_path):
    name = _truncate_image(own_data)
    config = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=False))
    runner = _train(config, own_data, tmp_path, epochs=2,
                    **{'default_hooks.logger.interval': 1})
    hub = runner.message_hub
    assert hub.get_info(SKIPPED_IMAGES) == 2  # met once per epoch
    assert hub.get_info(DROPPED_BOXES) == 0
    log = _log(tmp_path)
    assert f'skipped a bad training image: {osp.join(own_data, name)}: truncated PNG' in log
    assert 'data_faults/skipped_images: 2' in log.replace('2.0000', '2')
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_strict_mode_stops_at_the_corrupt_image(own_data, tmp_path):
    name = _truncate_image(own_data)
    config = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=True))
    with pytest.raises(DataFaultError) as info:
        _train(config, own_data, tmp_path)
    assert name in str(info.value) and 'truncated PNG' in str(info.value)
    assert 'set strict=False in FaultTolerantDataset to skip bad images' in str(info.value)


def _add_bad_boxes(root):
    path = osp.join(root, 'annotations/instances_train.json')
    coco = json.load(open(path))
    first, second = coco['annotations'][0], coco['annotations'][5]
    first['bbox'][2] = 0.0  # zero width
    second['bbox'][3] = -4.0  # negative height
    json.dump(coco, open(path, 'w'))
    names = {img['id']: img['file_name'] for img in coco['images']}
    return names[first['image_id']], names[second['image_id']]


def test_boxes_with_zero_or_negative_size_are_reported_and_dropped(own_data, tmp_path):
    zero_name, negative_name = _add_bad_boxes(own_data)
    config = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=False))
    runner = _train(config, own_data, tmp_path)
    assert runner.message_hub.get_info(DROPPED_BOXES) == 2
    log = _log(tmp_path)
    assert '2 boxes in' in log and 'cannot be trained on' in log
    assert f'{zero_name}: box' in log and f'{negative_name}: box' in log
    assert 'has zero or negative size' in log and 'They are dropped' in log


def test_boxes_with_zero_size_are_fatal_in_strict_mode(own_data, tmp_path):
    zero_name, _ = _add_bad_boxes(own_data)
    config = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=True))
    with pytest.raises(DataFaultError) as info:
        _train(config, own_data, tmp_path)
    message = str(info.value)
    assert zero_name in message and 'zero or negative size' in message
    assert 'set strict=False in FaultTolerantDataset to drop them' in message


class _BoxesAfterPipeline:
    """A dataset of another format whose boxes reach the pipeline output unfiltered."""
    metainfo = dict(classes=('a', ))
    test_mode = False

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=dict(img_path='x/bad_boxes.jpg'))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[0., 0., 10., 10.], [5., 5., 5., 9.], [3., 8., 9., 2.]]),
            labels=torch.tensor([0, 0, 0]))
        return dict(inputs=torch.zeros(3, 4, 4), data_samples=sample)


def test_degenerate_boxes_after_the_pipeline_are_dropped_or_fatal():
    data = FaultTolerantDataset(_BoxesAfterPipeline())[0]
    assert data['data_samples'].gt_instances.bboxes.tolist() == [[0., 0., 10., 10.]]
    faults = data['data_samples'].metainfo['data_faults']
    assert faults[0][:2] == ('box', 'x/bad_boxes.jpg') and '2 boxes' in faults[0][2]
    with pytest.raises(DataFaultError, match='x/bad_boxes.jpg: 2 boxes with zero or negative'):
        FaultTolerantDataset(_BoxesAfterPipeline(), strict=True)[0]


def test_images_without_objects_train_normally(own_data, tmp_path, caplog):
    path = osp.join(own_data, 'annotations/instances_train.json')
    coco = json.load(open(path))
    empty_ids = {img['id'] for img in coco['images'][:8]}  # half the images: no objects
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] not in empty_ids]
    json.dump(coco, open(path, 'w'))
    config = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=True))
    with caplog.at_level(logging.WARNING):
        runner = _train(config, own_data, tmp_path, **{'train_dataloader.batch_size': 8})
    assert len(runner.train_dataloader.dataset) == 16  # nothing filtered out
    assert runner.message_hub.get_info(SKIPPED_IMAGES) == 0
    assert runner.message_hub.get_info(DROPPED_BOXES) == 0
    losses = runner.message_hub.log_scalars
    assert np.isfinite(losses['train/loss'].current())
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


class _CorruptAt:
    """A dataset whose image ``bad`` is corrupt."""
    metainfo = dict(classes=('a', ))

    def __init__(self, bad, test_mode=False):
        self.bad, self.test_mode = bad, test_mode

    def __len__(self):
        return 3

    def __getitem__(self, idx):
        if idx == self.bad:
            raise DataFaultError(f'img{idx}.png', 'truncated JPEG (10 bytes, no end-of-image '
                                 'marker)')
        from mmdet.structures import DetDataSample
        return dict(inputs=torch.full((1, ), float(idx)), data_samples=DetDataSample())


def test_a_skipped_image_is_replaced_by_the_next_one_and_recorded():
    data = FaultTolerantDataset(_CorruptAt(bad=2))[2]
    assert data['inputs'].item() == 0.0  # wrapped around to the first image
    assert data['data_samples'].metainfo['data_faults'] == [
        ('image', 'img2.png', 'truncated JPEG (10 bytes, no end-of-image marker)')]


def test_validation_never_skips():
    with pytest.raises(DataFaultError, match=r'img1.png: truncated JPEG .*marker\)$'):
        FaultTolerantDataset(_CorruptAt(bad=1, test_mode=True))[1]


def test_all_images_bad_names_the_paths_to_check():
    class AllBad(_CorruptAt):
        def __getitem__(self, idx):
            raise DataFaultError(f'img{idx}.png', 'the file does not exist')

    with pytest.raises(RuntimeError, match='3 images in a row could not be loaded .*data_root'):
        FaultTolerantDataset(AllBad(bad=None), max_consecutive=2)[0]
