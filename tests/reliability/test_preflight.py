"""Configuration mistakes fail before training, through the real config path, naming the fix.

Every case calls ``build_train_runner`` (what ``tools/train.py`` runs). Static mistakes must
fail before the Runner exists: its work dir (logs, config dump) is never created.
"""
import json
import logging
import os
import os.path as osp
import re
import shutil

import pytest

from kd_det.preflight import DistillShapeError, PreflightError
from kd_det.apis.runner import build_test_runner, build_train_runner
from kd_det.utils.checkpoint import CheckpointMismatchError
from fault_table import fault_case
from reliability_helpers import (DCD_CONFIG, PKD_CONFIG, STUDENT_CONFIG,  # noqa: F401
                                 TEACHER_CONFIG, child_config, options, own_data,
                                 save_model_checkpoint, teacher_ckpt,
                                 tiny_data)


def _fails_before_build(config, work_dir, opts, error=PreflightError, match=None, case=None):
    """The message of ``error``; with ``case``, the failure is also that row of the fault table
    in docs/reliability.md (nothing lost: it fails before the Runner exists)."""
    if case is None:
        with pytest.raises(error, match=match) as info:
            build_train_runner(config, work_dir=str(work_dir), cfg_options=opts)
        raised = info.value
    else:
        with fault_case(case, lost='nothing', raises=error) as outcome:
            build_train_runner(config, work_dir=str(work_dir), cfg_options=opts)
        raised = outcome.error
        if match is not None:
            assert re.search(match, str(raised)), (match, str(raised))
    assert not osp.exists(work_dir), 'the Runner was built before the mistake was found'
    return str(raised)


# ---- teacher checkpoint ------------------------------------------------------------------------
def test_missing_teacher_checkpoint(tiny_data, tmp_path):
    message = _fails_before_build(
        DCD_CONFIG, tmp_path / 'wd',
        options(tiny_data, **{'model.teacher_ckpt': str(tmp_path / 'nope/epoch_16.pth')}))
    assert 'nope/epoch_16.pth' in message and 'model.teacher_ckpt' in message
    assert 'does not exist' in message and 'Train the teacher first' in message


@pytest.mark.skipif(os.geteuid() == 0, reason='root can read any file')
def test_unreadable_teacher_checkpoint(tiny_data, teacher_ckpt, tmp_path):
    locked = tmp_path / 'locked.pth'
    locked.write_bytes(open(teacher_ckpt, 'rb').read())
    locked.chmod(0)
    message = _fails_before_build(DCD_CONFIG, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': str(locked)}))
    assert 'cannot be read' in message and 'permissions' in message


def test_truncated_teacher_checkpoint(tiny_data, teacher_ckpt, tmp_path):
    cut = tmp_path / 'cut.pth'
    data = open(teacher_ckpt, 'rb').read()
    cut.write_bytes(data[:len(data) // 2])
    message = _fails_before_build(DCD_CONFIG, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': str(cut)}))
    assert 'truncated or not a torch checkpoint' in message and 'copied completely' in message


def test_teacher_checkpoint_of_another_network_names_keys_and_cause(tiny_data, tmp_path):
    # the student's checkpoint passed as the teacher: same layers, half the width
    student_ckpt = save_model_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    with pytest.raises(CheckpointMismatchError) as info:
        build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data, **{'model.teacher_ckpt':
                                                             student_ckpt}))
    message = str(info.value)
    assert 'teacher checkpoint' in message and 'does not match the teacher config' in message
    assert 'shape mismatches (282)' in message
    assert 'backbone.conv1.bn.bias: checkpoint (16,) vs model (32,)' in message
    assert 'likely cause: same layers, different widths' in message


def test_teacher_checkpoint_mismatch_is_strict_for_mmrazor_algorithms_too(tiny_data, tmp_path):
    # mmrazor's FpnTeacherDistill loads teacher_ckpt non-strictly (a wrong file only warns and
    # the teacher stays partly random); the pre-flight check makes it an error
    config = child_config(tmp_path, PKD_CONFIG, '\n'.join([
        "model = dict(_delete_=True, _scope_='mmrazor', type='FpnTeacherDistill',",
        "             architecture=_base_.model.architecture,",
        "             teacher=dict(cfg_path=_base_.teacher_config, pretrained=False),",
        "             teacher_ckpt=_base_.teacher_ckpt, distiller=_base_.model.distiller)"]))
    student_ckpt = save_model_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    message = _fails_before_build(config, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': student_ckpt}),
                                  error=CheckpointMismatchError)
    assert 'does not match the teacher config' in message
    assert 'likely cause: same layers, different widths' in message


def test_two_stage_checkpoint_for_one_stage_teacher_is_named(tmp_path):
    import torch
    from mmdet.registry import MODELS
    from mmengine.hub import get_config

    from kd_det.apis.runner import load_config
    from kd_det.utils.checkpoint import load_teacher_checkpoint
    faster = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py').model
    faster.backbone.init_cfg = None
    path = str(tmp_path / 'faster.pth')
    torch.save(dict(state_dict=MODELS.build(dict(faster, _scope_='mmdet')).state_dict()), path)
    teacher = MODELS.build(dict(load_config(TEACHER_CONFIG).model, _scope_='mmdet'))
    with pytest.raises(CheckpointMismatchError, match='two-stage .* one-stage teacher'):
        load_teacher_checkpoint(teacher, path)


def test_a_distillation_checkpoint_teaches_with_its_student(tmp_path, monkeypatch):
    """Iterative distillation: last round's distillation checkpoint is the next teacher (and
    the log says so for that checkpoint only)."""
    import mmengine.logging
    import torch
    from mmdet.registry import MODELS

    from kd_det.apis.runner import load_config
    from kd_det.utils.checkpoint import load_teacher_checkpoint
    cfg = dict(load_config(TEACHER_CONFIG).model, _scope_='mmdet')
    student, other = MODELS.build(cfg), MODELS.build(cfg)
    state = {f'architecture.{k}': v for k, v in student.state_dict().items()}
    state.update({f'teacher.{k}': torch.zeros_like(v) for k, v in other.state_dict().items()})
    path = str(tmp_path / 'distill_iter_800.pth')
    torch.save(dict(state_dict=state), path)
    messages = []
    monkeypatch.setattr(mmengine.logging, 'print_log', lambda message, **kwargs: messages.append(
        message) if 'distillation checkpoint' in str(message) else None)
    teacher = MODELS.build(cfg)
    load_teacher_checkpoint(teacher, path)
    for key, value in student.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value), key
    assert len(messages) == 1 and path in messages[0]

    plain = str(tmp_path / 'plain_iter_800.pth')
    torch.save(dict(state_dict=student.state_dict()), plain)
    load_teacher_checkpoint(MODELS.build(cfg), plain)
    assert len(messages) == 1  # a detector's own checkpoint is not announced as one


# ---- classes -----------------------------------------------------------------------------------
def test_teacher_with_another_class_count(tiny_data, teacher_ckpt, tmp_path):
    teacher_cfg = child_config(tmp_path, TEACHER_CONFIG,
                               'model = dict(bbox_head=dict(num_classes=5))', 'teacher5.py')
    config = child_config(tmp_path, DCD_CONFIG,
                          f'model = dict(teacher=dict(cfg_path={teacher_cfg!r}))')
    message = _fails_before_build(config, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt}))
    assert 'teacher bbox_head.num_classes=5, student 8' in message
    assert 'same classes' in message


def test_student_head_and_dataset_class_count_differ(tiny_data, teacher_ckpt, tmp_path):
    message = _fails_before_build(
        DCD_CONFIG, tmp_path / 'wd',
        options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt,
                              'model.architecture.bbox_head.num_classes': 80}))
    assert 'model.architecture.bbox_head.num_classes=80' in message
    assert 'training dataset has 8 classes' in message and 'set num_classes=8' in message


@pytest.mark.parametrize('teacher_classes, expected', [
    (('a', 'b', 'c'), 'trained on 3 classes'),
    (tuple(reversed(['red_disc', 'orange_disc', 'blue_square', 'blue_striped_square',
                     'green_triangle', 'green_diamond', 'purple_ring', 'purple_dotted_ring'])),
     'same classes in a different order'),
    (('red_disc', 'orange_disc', 'blue_square', 'blue_striped_square', 'green_triangle',
      'green_diamond', 'purple_ring', 'yellow_star'),
     "only the teacher has ('yellow_star'), only the student has ('purple_dotted_ring')"),
])
def test_teacher_trained_on_other_class_names(tiny_data, tmp_path, teacher_classes, expected):
    ckpt = save_model_checkpoint(TEACHER_CONFIG, str(tmp_path / 'teacher.pth'),
                                 classes=teacher_classes)
    message = _fails_before_build(DCD_CONFIG, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': ckpt}))
    assert "does not fit the student's data" in message and expected in message
    assert 'Use a teacher trained on this dataset' in message


# ---- feature shapes ----------------------------------------------------------------------------
def test_connector_with_wrong_in_channel_names_loss_level_and_shapes(tiny_data, teacher_ckpt,
                                                                     tmp_path):
    opts = options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt,
                                 'model.distiller.connectors.fpn2_s2t.in_channel': 32})
    with pytest.raises(DistillShapeError) as info:
        build_train_runner(PKD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=opts)
    message = str(info.value)
    assert "distill loss 'loss_pkd_fpn2'" in message and "connector 'fpn2_s2t'" in message
    assert "expects 32 input channels but the student recorder 'fpn'[2]" in message
    assert 'shape (2, 64, 5, 6)' in message
    assert "set in_channel=64 in model.distiller.connectors['fpn2_s2t']" in message


def test_missing_connector_suggests_one(tiny_data, teacher_ckpt, tmp_path):
    config = child_config(tmp_path, PKD_CONFIG, '\n'.join([
        "model = dict(distiller=dict(loss_forward_mappings=dict(loss_pkd_fpn0=dict(",
        "    preds_S=dict(_delete_=True, from_student=True, recorder='fpn', data_idx=0)))))"]))
    opts = options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt})
    with pytest.raises(DistillShapeError) as info:
        build_train_runner(config, work_dir=str(tmp_path / 'wd'), cfg_options=opts)
    message = str(info.value)
    assert "distill loss 'loss_pkd_fpn0' (PKDLoss) cannot compare" in message
    assert "preds_S=(2, 64, 20, 24) from the student recorder 'fpn'[0]" in message
    assert "preds_T=(2, 128, 20, 24) from the teacher recorder 'fpn'[0]" in message
    assert "add a connector mapping 64 -> 128 channels to 'preds_S'" in message


def test_dry_run_leaves_weights_and_batchnorm_statistics_untouched(tiny_data, teacher_ckpt,
                                                                   tmp_path):
    import torch

    from kd_det.preflight import check_distill_shapes
    runner = build_train_runner(PKD_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=options(
        tiny_data, **{'model.teacher_ckpt': teacher_ckpt}))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    rng = torch.get_rng_state()
    check_distill_shapes(runner.model)
    after = runner.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng, torch.get_rng_state())
    assert runner.model.training


# ---- misspelled types --------------------------------------------------------------------------
@pytest.mark.parametrize('key, value, suggestion', [
    ('model.architecture.bbox_head.type', 'RetinaHeadd', "'RetinaHead'"),
    ('model.distiller.distill_losses.loss_pkd_fpn1.type', 'PKDLos', "'PKDLoss'"),
    ('model.distiller.connectors.fpn0_s2t.type', 'ConvModulConnector', "'ConvModuleConnector'"),
    ('optim_wrapper.optimizer.type', 'adamw', "'AdamW'"),
])
def test_misspelled_type_suggests_registered_names(tiny_data, teacher_ckpt, tmp_path, key,
                                                   value, suggestion):
    opts = options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt, key: value})
    message = _fails_before_build(PKD_CONFIG, tmp_path / 'wd', opts)
    assert f'{key}.type={value!r}'.replace('.type.type', '.type') in message
    assert f'did you mean {suggestion}' in message


def test_misspelled_type_in_the_teacher_config_names_that_file(tiny_data, teacher_ckpt,
                                                               tmp_path):
    teacher_cfg = child_config(tmp_path, TEACHER_CONFIG, "model = dict(neck=dict(type='FNP'))",
                               'teacher_typo.py')
    config = child_config(tmp_path, DCD_CONFIG,
                          f'model = dict(teacher=dict(cfg_path={teacher_cfg!r}))')
    message = _fails_before_build(config, tmp_path / 'wd',
                                  options(tiny_data, **{'model.teacher_ckpt': teacher_ckpt}))
    assert f'model.teacher (from {teacher_cfg}).neck.type=\'FNP\'' in message
    assert "'FPN'" in message


def test_every_shipped_config_passes_the_type_check():
    import glob

    from kd_det.preflight import check_registered_types
    from kd_det.apis.runner import load_config
    root = osp.dirname(DCD_CONFIG).rsplit('/configs/', 1)[0]
    for config in glob.glob(osp.join(root, 'configs/**/*.py'), recursive=True):
        if '/_base_/' not in config:
            check_registered_types(load_config(config))


# ---- datasets ----------------------------------------------------------------------------------
def _rewrite_train_json(root, change):
    path = osp.join(root, 'annotations/instances_train.json')
    with open(path) as f:
        coco = json.load(f)
    text = change(coco)
    with open(path, 'w') as f:
        f.write(text if isinstance(text, str) else json.dumps(coco))
    return path


def test_dataset_without_images(own_data, tmp_path):
    _rewrite_train_json(own_data, lambda coco: coco.update(images=[], annotations=[]))
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data))
    assert 'train_dataloader.dataset' in message and 'lists no images' in message


def test_image_folder_missing(own_data, tmp_path):
    import shutil
    shutil.rmtree(osp.join(own_data, 'train'))
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data))
    assert 'none of the 16 images listed in' in message and 'exist, e.g.' in message
    assert 'train/000000.png' in message and 'data_prefix.img' in message


def test_annotation_file_is_truncated_json(own_data, tmp_path):
    _rewrite_train_json(own_data, lambda coco: json.dumps(coco)[:500])
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data))
    assert 'instances_train.json is not valid JSON' in message and 'line 1' in message


@pytest.mark.parametrize('content, expected', [
    ('[1, 2, 3]', 'its top level is a list'),
    ('{"images": [{"id": 1, "file_name": "a.png"}]}', "'categories' missing or not a list"),
    ('{"images": [{"file_name": "a.png"}], "categories": [{"id": 1, "name": "x"}]}',
     'images[0] has no id'),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "x"}],'
     ' "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2]}]}',
     'annotations[0] has bbox [1, 2], not [x, y, width, height]'),
])
def test_annotation_file_that_is_not_coco(own_data, tmp_path, content, expected):
    _rewrite_train_json(own_data, lambda coco: content)
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data))
    assert expected in message


def test_configured_class_name_not_in_the_annotation_file(own_data, tmp_path):
    opts = options(own_data, **{'train_dataloader.dataset.metainfo.classes': (
        'red_dsc', 'orange_disc', 'blue_square', 'blue_striped_square', 'green_triangle',
        'green_diamond', 'purple_ring', 'purple_dotted_ring')})
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', opts)
    assert "'red_dsc' (did you mean 'red_disc'?)" in message
    assert 'silently shift the labels' in message



def _rewrite_json(root, split, change):
    path = osp.join(root, f'annotations/instances_{split}.json')
    with open(path) as f:
        coco = json.load(f)
    change(coco)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path, coco


def _shift_category_ids(coco, by, count=None):
    for ann in coco['annotations'][:count]:
        ann['category_id'] += by


def test_0_based_category_ids_are_named_with_the_fix(own_data, tmp_path):
    # 1-based categories, 0-based annotations: mmdet shifts every label and drops class 0
    path, coco = _rewrite_json(own_data, 'train', lambda c: _shift_category_ids(c, -1))
    used = sorted({ann['category_id'] for ann in coco['annotations']})
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data),
                                  case='annotations with 0-based category_id')
    total = len(coco['annotations'])
    unknown = sum(ann['category_id'] == 0 for ann in coco['annotations'])
    assert message.startswith(
        f'train_dataloader.dataset.ann_file: {unknown} of the {total} annotations of {path} have '
        'a category_id that is not the id of one of its categories: the annotations use '
        f'category ids ({", ".join(map(str, used))}), the categories have ids (1, 2, 3, 4, 5, '
        '6, 7, 8). The annotation ids look 0-based (each is a category id - 1)')
    assert "Add 1 to every annotation's category_id" in message


@pytest.mark.parametrize('count', [None, 3])
def test_category_ids_matching_no_category_are_named(own_data, tmp_path, count):
    path, coco = _rewrite_json(own_data, 'train', lambda c: _shift_category_ids(c, 100, count))
    case = 'annotations whose category_id matches no category' if count == 3 else None
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data), case=case)
    unknown = count or len(coco['annotations'])
    assert f'{unknown} of the {len(coco["annotations"])} annotations of {path} have a ' \
        'category_id that is not the id of one of its categories' in message
    assert 'the categories have ids (1, 2, 3, 4, 5, 6, 7, 8)' in message
    assert 'look 0-based' not in message
    assert message.endswith('mmdet drops the boxes with unknown ids without a word. Set each '
                            "annotation's category_id to the id of its category in "
                            '"categories" (was the file written for another category list?)')


def test_category_ids_of_the_evaluation_file_are_checked_too(own_data, tmp_path):
    path, _ = _rewrite_json(own_data, 'val', lambda c: _shift_category_ids(c, -1))
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data))
    assert message.startswith('val_dataloader.dataset.ann_file: ') and path in message
    assert 'look 0-based' in message


def _other_category_only(coco):
    coco['categories'].append(dict(id=9, name='cloud', supercategory='shape'))
    for ann in coco['annotations']:
        ann['category_id'] = 9


@pytest.mark.parametrize('filter_empty_gt, consequence', [
    (False, 'the model would learn background only'),
    (True, 'filter_cfg.filter_empty_gt=True would leave no image to train on')])
@pytest.mark.parametrize('change', [_other_category_only, lambda c: c.update(annotations=[])],
                         ids=['other_category', 'no_annotations'])
def test_training_set_without_boxes_of_the_classes(own_data, tmp_path, change, filter_empty_gt,
                                                   consequence):
    path, _ = _rewrite_json(own_data, 'train', change)
    opts = options(own_data, **{
        'train_dataloader.dataset.filter_cfg.filter_empty_gt': filter_empty_gt})
    case = ('training set with no box of the configured classes'
            if change is _other_category_only and not filter_empty_gt else None)
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', opts, case=case)
    assert message == (
        f"train_dataloader.dataset: {path} has no boxes of the configured classes ('red_disc', "
        "'orange_disc', 'blue_square', 'blue_striped_square', 'green_triangle', "
        f"'green_diamond', ... (8 in all)): {consequence}. Check that metainfo.classes names "
        'the categories the annotations use, and that the annotation file is the one with the '
        'boxes')


@pytest.mark.parametrize('split, section, key, expected', [
    ('train', 'annotations', 'area', 'add "area": width * height of the bbox'),
    ('train', 'annotations', 'id', 'give every annotation a unique integer "id"'),
    ('train', 'images', 'width', 'add the image size in pixels ("width" and "height")'),
    ('val', 'annotations', 'iscrowd', 'add "iscrowd": 0'),
])
def test_missing_coco_keys_are_named_with_the_fix(own_data, tmp_path, split, section, key,
                                                  expected):
    def drop(coco):
        for entry in coco[section]:
            del entry[key]
    path, coco = _rewrite_json(own_data, split, drop)
    case = 'COCO json without area' if key == 'area' else None
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data), case=case)
    # iscrowd: mmdet's dataset does without it, pycocotools' COCOeval does not
    where = 'val_evaluator.ann_file' if key == 'iscrowd' else f'{split}_dataloader.dataset.ann_file'
    count = len(coco[section])
    assert message.startswith(f'{where}: {path} is not valid COCO (mmdet reads these from '
                              'every entry and would stop with a bare KeyError or TypeError):')
    assert f'\n  {section}[0] has no {key} (nor do all {count - 1} other {section}): ' \
        f'{expected}' in message


def test_missing_area_is_what_mmdet_stops_at(own_data):
    from mmdet.datasets import CocoDataset
    _rewrite_json(own_data, 'train', lambda c: [a.pop('area') for a in c['annotations']])
    with pytest.raises(KeyError, match='area'):
        CocoDataset(data_root=own_data, ann_file='annotations/instances_train.json',
                    data_prefix=dict(img=''), pipeline=[])


def _list_more_images(root, copies=32):
    """The training json lists ``copies`` more images (copies of image 0, without boxes), so
    that a sample of 20 would check only every other image."""
    def add(coco):
        first = coco['images'][0]
        for index in range(copies):
            name = f'train/copy_{index:02d}.png'
            shutil.copy(osp.join(root, first['file_name']), osp.join(root, name))
            coco['images'].append(dict(first, id=1000 + index, file_name=name))
    return _rewrite_json(root, 'train', add)[1]['images']


def test_every_listed_image_must_exist(own_data, tmp_path):
    images = _list_more_images(own_data)
    missing = osp.join(own_data, images[41]['file_name'])
    os.remove(missing)
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data),
                                  case='one image missing among many (not fault tolerant)')
    assert message == (
        'train_dataloader.dataset: 1 of the 48 images listed in '
        f'{osp.join(own_data, "annotations/instances_train.json")} does not exist: {missing} '
        f"(data_root='{own_data}/', data_prefix.img='' + file_name); the run would stop when "
        'it reaches the first one. Restore them or remove them from the annotation file; or '
        "wrap the training dataset in dict(type='FaultTolerantDataset', strict=False, "
        'dataset=...) to skip them')


WRAPPED = '\n'.join([
    'train_dataloader = dict(dataset=dict(',
    "    _delete_=True, type='FaultTolerantDataset', strict={strict},",
    '    dataset=_base_.train_dataloader.dataset))'])


def test_missing_images_are_only_warned_about_when_fault_tolerant(own_data, tmp_path,
                                                                  monkeypatch):
    from kd_det import preflight
    from kd_det.apis.runner import load_config
    from kd_det.preflight import datasets as dataset_checks
    images = _list_more_images(own_data)
    missing = [osp.join(own_data, images[i]['file_name']) for i in (3, 17, 41, 45)]
    for path in missing:
        os.remove(path)
    logged, levels = [], []

    def print_log(msg, **kwargs):
        logged.append(msg)
        levels.append(logging.getLevelName(kwargs.get('level', logging.INFO)))

    monkeypatch.setattr(dataset_checks, 'print_log', print_log)
    opts = options(own_data, prefix='dataset.')
    tolerant = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=False))
    with fault_case('missing training images with FaultTolerantDataset(strict=False)',
                    lost='the missing images (skipped, named)') as outcome:
        preflight.check_datasets(load_config(tolerant, cfg_options=opts))
        outcome.sees = f'{levels[0]} - {logged[0]}'
    assert levels == ['WARNING']
    assert logged == [
        'train_dataloader.dataset.dataset: 4 of the 48 images listed in '
        f'{osp.join(own_data, "annotations/instances_train.json")} do not exist: '
        f'{", ".join(missing[:3])} (and 1 more) '
        f"(data_root='{own_data}/', data_prefix.img='' + file_name). FaultTolerantDataset "
        '(strict=False) skips them; restore them or remove them from the annotation file']
    strict = child_config(tmp_path, STUDENT_CONFIG, WRAPPED.format(strict=True), 'strict.py')
    with pytest.raises(PreflightError, match='4 of the 48 images listed in .* do not exist'):
        preflight.check_datasets(load_config(strict, cfg_options=opts))


def _truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return len(data) // 2


def test_truncated_validation_image_fails_before_training(own_data, tmp_path):
    path = osp.join(own_data, 'val/000003.png')
    size = _truncate(path)
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(own_data),
                                  case='truncated JPEG/PNG in the validation set')
    assert message == (
        'val_dataloader.dataset: 1 of the 8 images listed in '
        f'{osp.join(own_data, "annotations/instances_val.json")} is incomplete or unreadable: '
        f'{path}: truncated PNG ({size} bytes, no IEND chunk). Evaluating them would change the '
        "metric silently (OpenCV decodes the part of a cut image that is there); copy them "
        'again from the source, or remove them from the annotation file')


def test_truncated_test_image_fails_before_testing(own_data, tmp_path):
    _truncate(osp.join(own_data, 'val/000005.png'))
    with pytest.raises(PreflightError, match=r'test_dataloader.dataset: 1 of the 8 images .*'
                       r'val/000005.png: truncated PNG'):
        build_test_runner(STUDENT_CONFIG, 'unused.pth', work_dir=str(tmp_path / 'wd'),
                          cfg_options=options(own_data))


def test_shipped_dataset_passes_every_check_quickly():
    import time

    from conftest import REPO_ROOT
    from kd_det.preflight import check_datasets
    from kd_det.apis.runner import load_config
    from kd_det.benchmark.options import dataset_options
    if not osp.isdir(osp.join(REPO_ROOT, 'data/synthetic')):
        pytest.skip('make it with python -m kd_det.datasets.synthetic --out data/synthetic')
    cfg = load_config(STUDENT_CONFIG, cfg_options=dataset_options(
        osp.join(REPO_ROOT, 'data/synthetic')))
    start = time.perf_counter()
    check_datasets(cfg, 'train')
    check_datasets(cfg, 'test')
    assert time.perf_counter() - start < 5  # 800 + 200 images

def test_missing_annotation_file_names_data_root(tiny_data, tmp_path):
    opts = options(tiny_data, **{'train_dataloader.dataset.ann_file': 'annotations/x.json'})
    message = _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', opts)
    assert 'annotations/x.json does not exist' in message and 'data_root=' in message


def test_test_runner_checks_the_test_split(tiny_data, tmp_path):
    opts = options(tiny_data, **{'test_dataloader.dataset.ann_file': 'annotations/x.json'})
    with pytest.raises(PreflightError, match='test_dataloader.dataset.ann_file'):
        build_test_runner(STUDENT_CONFIG, 'unused.pth', work_dir=str(tmp_path / 'wd'),
                          cfg_options=opts)


def test_checks_can_be_switched_off_by_name(tiny_data, tmp_path):
    opts = options(tiny_data, **{'model.neck.type': 'FPNN', 'preflight.skip': ['types']})
    with pytest.raises(KeyError, match='FPNN is not in the'):  # mmengine's own, later error
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'), cfg_options=opts)


def test_checkpoint_paths_that_do_not_exist(tiny_data, tmp_path):
    missing = str(tmp_path / 'epoch_3.pth')
    _fails_before_build(STUDENT_CONFIG, tmp_path / 'wd', options(tiny_data, load_from=missing),
                        match=r"checkpoint '.*epoch_3.pth' \(load_from\) does not exist")
    with pytest.raises(PreflightError, match=r"checkpoint '.*epoch_3.pth' \(--resume\) does not"):
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data), resume=missing)
    with pytest.raises(PreflightError,
                       match=r"checkpoint '.*epoch_3.pth' \(the checkpoint to test\) does not"):
        build_test_runner(STUDENT_CONFIG, missing, work_dir=str(tmp_path / 'wd'),
                          cfg_options=options(tiny_data))
