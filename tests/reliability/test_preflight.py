"""Configuration mistakes fail before training, through the real config path, naming the fix.

Every case calls ``build_train_runner`` (what ``tools/train.py`` runs). Static mistakes must
fail before the Runner exists: its work dir (logs, config dump) is never created.
"""
import json
import os
import os.path as osp

import pytest

from kd_det.apis.preflight import DistillShapeError, PreflightError
from kd_det.apis.runner import build_test_runner, build_train_runner
from kd_det.utils.checkpoint import CheckpointMismatchError
from reliability_helpers import (DCD_CONFIG, PKD_CONFIG, STUDENT_CONFIG,  # noqa: F401
                                 TEACHER_CONFIG, child_config, options, own_data,
                                 save_model_checkpoint, teacher_ckpt,
                                 tiny_data)


def _fails_before_build(config, work_dir, opts, error=PreflightError, match=None):
    with pytest.raises(error, match=match) as info:
        build_train_runner(config, work_dir=str(work_dir), cfg_options=opts)
    assert not osp.exists(work_dir), 'the Runner was built before the mistake was found'
    return str(info.value)


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

    from kd_det.apis.preflight import check_distill_shapes
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

    from kd_det.apis.preflight import check_registered_types
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
    assert 'none of the 16 images checked exist' in message
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
                        match="load_from checkpoint '.*epoch_3.pth' does not exist")
    with pytest.raises(PreflightError, match="--resume checkpoint '.*epoch_3.pth' does not"):
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data), resume=missing)
    with pytest.raises(PreflightError, match="the checkpoint to test '.*epoch_3.pth' does not"):
        build_test_runner(STUDENT_CONFIG, missing, work_dir=str(tmp_path / 'wd'),
                          cfg_options=options(tiny_data))
