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
                                         SafeLoadImageFromFile, image_bytes_fault,
                                         image_file_fault)
from kd_det.engine.hooks.data_fault_hook import (DROPPED_BOXES, SKIPPED_IMAGE_FILES,
                                                 SKIPPED_IMAGES, DataFaultHook)
from fault_table import fault_case
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



def _encoded(kind):
    """A 40 x 50 noise image as PNG or JPEG bytes; ``jpg_thumbnail`` embeds a complete 8 x 8
    JPEG (with its own end marker) in an APP1 segment, as EXIF thumbnails are."""
    img = (np.random.RandomState(0).rand(40, 50, 3) * 255).astype(np.uint8)
    params = {'jpg_progressive': [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
              'jpg_restart_markers': [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]}.get(kind, [])
    data = cv2.imencode('.png' if kind == 'png' else '.jpg', img, params)[1].tobytes()
    if kind == 'jpg_thumbnail':
        thumb = cv2.imencode('.jpg', img[:8, :8])[1].tobytes()
        payload = b'Exif\x00\x00' + thumb
        data = data[:2] + b'\xff\xe1' + (len(payload) + 2).to_bytes(2, 'big') + payload + \
            data[2:]
    return data


IMAGE_KINDS = ['png', 'jpg', 'jpg_progressive', 'jpg_restart_markers', 'jpg_thumbnail']
TRAILERS = {  # what cameras and tools append after the end marker
    'zero_padding': b'\x00' * 8192,
    'maker_data': b'SEFH' + bytes(range(256)) * 40,
    'second_jpeg': cv2.imencode('.jpg', np.zeros((30, 30, 3), np.uint8))[1].tobytes(),
}


@pytest.mark.parametrize('trailer', sorted(TRAILERS))
@pytest.mark.parametrize('kind', IMAGE_KINDS)
def test_bytes_after_the_end_marker_are_accepted(tmp_path, kind, trailer):
    data = _encoded(kind)
    path = tmp_path / f'img.{kind[:3]}'
    path.write_bytes(data + TRAILERS[trailer])
    assert image_bytes_fault(path.read_bytes()) is None
    assert image_file_fault(str(path)) is None
    loaded = SafeLoadImageFromFile().transform(dict(img_path=str(path)))['img']
    assert np.array_equal(loaded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


@pytest.mark.parametrize('kind', IMAGE_KINDS)
def test_truncated_images_are_detected_wherever_they_are_cut(tmp_path, kind):
    data = _encoded(kind)
    name = 'PNG (' if kind == 'png' else 'JPEG ('
    path = tmp_path / 'cut'
    for cut in [10, 200, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1]:
        path.write_bytes(data[:cut])
        assert image_bytes_fault(data[:cut]).startswith(f'truncated {name}{cut} bytes'), cut
        assert image_file_fault(str(path)) == image_bytes_fault(data[:cut])


def test_a_training_image_with_bytes_after_its_end_is_not_skipped(own_data):
    from kd_det.datasets.synthetic import SYNTHETIC_CLASSES
    with open(osp.join(own_data, 'train/000003.png'), 'ab') as f:
        f.write(TRAILERS['maker_data'])
    dataset = FaultTolerantDataset(dict(
        type='CocoDataset', _scope_='mmdet', data_root=own_data,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img=''), metainfo=dict(classes=SYNTHETIC_CLASSES),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackDetInputs')]), strict=True)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'].endswith('train/000003.png'))
    with fault_case('valid PNG/JPEG with bytes after the end marker', lost='nothing') as outcome:
        sample = dataset[index]['data_samples']
        outcome.sees = ('trains on it like any image (no warning)' if 'data_faults' not in sample
                        else f'skipped: {sample.data_faults}')
    assert sample.img_path.endswith('train/000003.png') and 'data_faults' not in sample

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
    assert hub.get_info(SKIPPED_IMAGES) == 1  # met in both epochs, one image
    assert hub.get_info(SKIPPED_IMAGE_FILES) == [osp.join(own_data, name)]
    assert hub.get_info(DROPPED_BOXES) == 0
    log = _log(tmp_path)
    assert f'skipped a bad training image: {osp.join(own_data, name)}: truncated PNG' in log
    last = next(line for line in log.splitlines() if 'Epoch(train) [2][4/4]' in line)
    assert 'data_faults/skipped_images: 1 ' in last
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


class _Runner:
    """What DataFaultHook uses of a Runner: the message hub and the training dataset."""

    def __init__(self, hub):
        from types import SimpleNamespace
        self.message_hub = hub
        self.train_dataloader = SimpleNamespace(dataset=None)


def _batch(*files):
    from mmdet.structures import DetDataSample
    samples = []
    for name in files:
        sample = DetDataSample()
        sample.set_metainfo({'data_faults': [('image', name, 'truncated PNG')]})
        samples.append(sample)
    return dict(data_samples=samples)


# 13 skip events of 6 images: drawn again in later epochs, and met twice in one batch when two
# bad images follow each other (the sample of the first retries on the second)
SKIP_EVENTS = [('a', 'b'), ('c', ), ('d', 'd'), ('a', 'e'), ('f', 'b'), ('c', 'd', 'e', 'f')]


def _hook_run(hub, batches, **kwargs):
    hook, runner = DataFaultHook(**kwargs), _Runner(hub)
    hook.before_train(runner)
    for index, files in enumerate(batches):
        hook.after_train_iter(runner, index, _batch(*files))
    return hook


def test_skipped_images_counts_each_image_once():
    from mmengine.logging import MessageHub
    assert sum(len(files) for files in SKIP_EVENTS) == 13
    hub = MessageHub('distinct_images')
    with fault_case('the same bad image met several times',
                    lost='the bad images (skipped, named)') as outcome:
        _hook_run(hub, SKIP_EVENTS, max_skipped_images=6)  # 6 images: not over the limit
        outcome.sees = (f'{SKIPPED_IMAGES}: {hub.get_info(SKIPPED_IMAGES)} for '
                        f'{len({name for files in SKIP_EVENTS for name in files})} bad images met '
                        f'{sum(len(files) for files in SKIP_EVENTS)} times')
    assert hub.get_info(SKIPPED_IMAGES) == 6
    assert hub.get_info(SKIPPED_IMAGE_FILES) == ['a', 'b', 'c', 'd', 'e', 'f']
    assert hub.get_scalar(f'train/{SKIPPED_IMAGES}').current() == 6


def test_max_skipped_images_names_the_count_and_the_files():
    from mmengine.logging import MessageHub
    with pytest.raises(RuntimeError) as info:
        _hook_run(MessageHub('limit'), SKIP_EVENTS + [('g', 'a')], max_skipped_images=6)
    assert str(info.value) == (
        '7 distinct training images were skipped as unreadable, more than '
        'max_skipped_images=6 of DataFaultHook: a, b, c (and 4 more); the warnings above say '
        'what is wrong with each. Fix or remove them, or raise the limit.')


def test_skipped_images_survive_resume():
    """mmengine saves the message hub's state_dict in each checkpoint and loads it into the
    resumed run's hub before ``before_train``."""
    from mmengine.logging import MessageHub
    first = MessageHub('before_resume')
    _hook_run(first, SKIP_EVENTS[:3])
    assert first.get_info(SKIPPED_IMAGES) == 4
    resumed = MessageHub('after_resume')
    resumed.load_state_dict(first.state_dict())
    _hook_run(resumed, SKIP_EVENTS[3:])  # a, b, c, d again; e, f new
    assert resumed.get_info(SKIPPED_IMAGES) == 6
    assert resumed.get_info(SKIPPED_IMAGE_FILES) == ['a', 'b', 'c', 'd', 'e', 'f']
