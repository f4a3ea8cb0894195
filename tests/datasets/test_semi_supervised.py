"""Labeled/unlabeled splits, the partially labeled dataset, mixed batches, and a tiny
semi-supervised distillation run end to end."""
import json
import math
import os.path as osp

import pytest
import torch

from conftest import REPO_ROOT, semi_run_options
from kd_det.datasets.semi_supervised import (PartiallyLabeledCocoDataset, is_labeled,
                                             labeled_image_ids)
from kd_det.datasets.split_labeled import main as split_main
from kd_det.datasets.split_labeled import split_coco

CSL_SEMI = osp.join(REPO_ROOT, 'configs/confidence_soft_label/'
                    'csl_retinanet_mnv2_800it_embedded_semi10.py')
CSL_SEMI_NEXT_ROUND = osp.join(REPO_ROOT, 'configs/confidence_soft_label/'
                               'csl_retinanet_mnv2_800it_embedded_semi10_next_round.py')
PSEUDO_SEMI = osp.join(REPO_ROOT, 'configs/confidence_soft_label/'
                       'pseudo_label_retinanet_mnv2_800it_embedded_semi10.py')
CLASSES = ('red_disc', 'orange_disc', 'blue_square', 'blue_striped_square', 'green_triangle',
           'green_diamond', 'purple_ring', 'purple_dotted_ring')
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')]


def test_labeled_ids_are_deterministic_sized_and_order_free():
    ids = list(range(1, 101))
    chosen = labeled_image_ids(ids, 0.1, seed=0)
    assert len(chosen) == 10 and chosen <= set(ids)
    assert labeled_image_ids(reversed(ids), 0.1, seed=0) == chosen
    assert labeled_image_ids(ids, 0.1, seed=1) != chosen
    assert labeled_image_ids(ids, 0.2, seed=0) != chosen
    assert len(labeled_image_ids(ids, 0.001, 0)) == 1  # a positive fraction keeps one image
    assert labeled_image_ids(ids, 0.0, 0) == set()
    assert labeled_image_ids(ids, 1.0, 0) == set(ids)
    with pytest.raises(ValueError, match='fraction'):
        labeled_image_ids(ids, 1.5)


def _dataset(root, subset, fraction=0.1, ann='annotations/instances_train.json', **kwargs):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):  # the pipeline's transforms
        return _build_dataset(root, subset, fraction, ann, **kwargs)


def _build_dataset(root, subset, fraction, ann, **kwargs):
    return PartiallyLabeledCocoDataset(
        data_root=root, ann_file=ann, data_prefix=dict(img=''), metainfo=dict(classes=CLASSES),
        filter_cfg=dict(filter_empty_gt=False, min_size=0), pipeline=PIPELINE,
        subset=subset, labeled_fraction=fraction, split_seed=0, **kwargs)


def test_labeled_and_unlabeled_subsets_partition_the_images(tiny_dataset):
    labeled = _dataset(tiny_dataset, 'labeled')
    unlabeled = _dataset(tiny_dataset, 'unlabeled')
    labeled_ids = {labeled.get_data_info(i)['img_id'] for i in range(len(labeled))}
    unlabeled_ids = {unlabeled.get_data_info(i)['img_id'] for i in range(len(unlabeled))}
    assert len(labeled_ids) == round(0.1 * 48) and len(unlabeled_ids) == 48 - len(labeled_ids)
    assert not labeled_ids & unlabeled_ids
    assert labeled_ids == labeled_image_ids(range(1, 49), 0.1, 0)

    sample = unlabeled[0]['data_samples']
    assert not is_labeled(sample)
    assert len(sample.gt_instances) == 0  # annotations are dropped, not merely hidden
    labeled_sample = labeled[0]['data_samples']
    assert is_labeled(labeled_sample) and len(labeled_sample.gt_instances) > 0


def test_split_tool_writes_the_same_split(tiny_dataset, tmp_path, capsys):
    ann = osp.join(tiny_dataset, 'annotations/instances_train.json')
    split_main(['--ann', ann, '--fraction', '0.1', '--seed', '0', '--out-dir', str(tmp_path)])
    with open(tmp_path / 'instances_train.labeled@10.json') as f:
        labeled = json.load(f)
    with open(tmp_path / 'instances_train.unlabeled@10.json') as f:
        unlabeled = json.load(f)
    assert {img['id'] for img in labeled['images']} == labeled_image_ids(range(1, 49), 0.1, 0)
    assert {a['image_id'] for a in labeled['annotations']} <= {i['id'] for i in labeled['images']}
    assert unlabeled['annotations'] == [] and len(unlabeled['images']) == 48 - 5
    assert labeled['categories'] == unlabeled['categories']
    with open(ann) as f:
        coco = json.load(f)
    kept = split_coco(coco, 0.1, 0)[0]
    assert len(kept['annotations']) == len(labeled['annotations'])


def test_unlabeled_images_from_an_image_list_without_annotations(tiny_dataset, tmp_path):
    # like COCO's image_info_unlabeled2017.json: images (and categories), no annotations
    with open(osp.join(tiny_dataset, 'annotations/instances_train.json')) as f:
        coco = json.load(f)
    info = dict(images=coco['images'][:7], categories=coco['categories'])
    ann = tmp_path / 'image_info.json'
    ann.write_text(json.dumps(info))
    dataset = _dataset(tiny_dataset, 'unlabeled', fraction=0.0, ann=str(ann))
    assert len(dataset) == 7
    assert not is_labeled(dataset[3]['data_samples'])


def _semi_options(root, iters):
    options = semi_run_options(root, iters)
    options['model.teacher_ckpt'] = None
    return options


def test_every_mixed_batch_holds_labeled_and_unlabeled_images_at_the_ratio(tiny_dataset):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from kd_det.apis.runner import load_config
    cfg = load_config(CSL_SEMI, work_dir='unused', cfg_options=_semi_options(tiny_dataset, 2))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batches = iter(loader)
    for _ in range(3):
        batch = next(batches)
        flags = [is_labeled(sample) for sample in batch['data_samples']]
        assert len(flags) == 8 and sum(flags) == 4  # source_ratio [1, 1]


def test_tiny_semi_supervised_distillation_run(tiny_dataset, tmp_path):
    from kd_det.apis.runner import build_train_runner
    options = _semi_options(tiny_dataset, iters=30)
    # a random teacher passes no confidence threshold: top-k regions exercise every term
    options['model.distiller.region'] = 'topk'
    runner = build_train_runner(CSL_SEMI, work_dir=str(tmp_path), cfg_options=options)
    runner.model.init_weights()  # what train() does first; a second call is a no-op
    teacher_before = {k: v.clone() for k, v in runner.model.teacher.state_dict().items()}
    runner.train()
    for key, value in runner.model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), f'teacher changed: {key}'
    # read the logged values from the run's message hub (a scalars.json may belong to an
    # earlier test's visualizer, which mmengine keeps as a process-wide singleton)
    scalars = runner.message_hub.log_scalars
    for key in ('loss', 'distill.loss_soft_cls', 'distill.loss_soft_box', 'distill.loss_conf_feat',
                'student.loss_cls', 'student.loss_bbox', 'distill.hard_weight_max'):
        values, _ = scalars[f'train/{key}'].data
        assert len(values) == 30 and all(math.isfinite(v) for v in values), key
    assert set(scalars['train/labeled_images'].data[0]) == {4.0}
    # the validation ran at the end (30 iterations from scratch may not yet detect anything,
    # so COCO metrics are not asserted)
    assert 'val/time' in scalars
    assert osp.isfile(tmp_path / 'iter_30.pth')
    _next_round_is_taught_by_this_student(tiny_dataset, tmp_path, runner.model.student)


def _next_round_is_taught_by_this_student(root, round1_dir, round1_student):
    """The teacher-update loop: round 2 (the ``*_next_round.py`` config) loads round 1's
    distillation checkpoint, whose student becomes its frozen teacher; round 2 also runs the
    labeled/unlabeled balance with a ramp, which follows the runner's iteration."""
    from kd_det.apis.runner import build_train_runner
    options = _semi_options(root, iters=6)
    options.update({'model.teacher_ckpt': str(round1_dir / 'iter_30.pth'),
                    'model.unlabeled_weight': 2.0, 'model.unlabeled_rampup_iters': 4,
                    'default_hooks.logger.interval': 1})
    runner = build_train_runner(CSL_SEMI_NEXT_ROUND, work_dir=str(round1_dir / 'round2'),
                                cfg_options=options)
    runner.model.init_weights()
    taught_by = round1_student.state_dict()
    teacher = runner.model.teacher.state_dict()
    assert teacher.keys() == taught_by.keys()
    for key, value in teacher.items():
        assert torch.equal(value, taught_by[key]), f'teacher is not the round-1 student: {key}'
    runner.train()
    ramp, _ = runner.message_hub.log_scalars['train/distill.unlabeled_weight'].data
    expected = [2.0 * math.exp(-5.0 * (1 - min(i / 4, 1)) ** 2) for i in range(6)]
    assert list(ramp) == pytest.approx(expected, rel=1e-5)


def test_pseudo_label_baseline_runs(tiny_dataset, tmp_path):
    from kd_det.apis.runner import build_train_runner
    runner = build_train_runner(PSEUDO_SEMI, work_dir=str(tmp_path),
                                cfg_options=_semi_options(tiny_dataset, iters=5))
    runner.train()
    assert osp.isfile(tmp_path / 'iter_5.pth')
