"""The demo's detection picture: score filtering, COCO ground truth, the grid PNG, inference."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from conftest import STUDENT_CONFIG
from kd_det.visualization.detections import (boxes_above, coco_ground_truth,
                                             draw_detection_grid, predict_boxes)


def test_boxes_above_keeps_only_confident_boxes():
    instances = InstanceData(bboxes=torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.],
                                                  [2., 2., 6., 6.]]),
                             scores=torch.tensor([0.9, 0.3, 0.29]),
                             labels=torch.tensor([2, 0, 1]))
    kept = boxes_above(instances, 0.3)
    np.testing.assert_array_equal(kept['labels'], [2, 0])
    np.testing.assert_allclose(kept['scores'], [0.9, 0.3])
    np.testing.assert_array_equal(kept['bboxes'], [[0, 0, 4, 4], [1, 1, 5, 5]])


def test_coco_ground_truth_reads_xyxy_boxes_in_id_order(tiny_dataset):
    ann_file = osp.join(tiny_dataset, 'annotations', 'instances_val.json')
    files, images, truth, names = coco_ground_truth(ann_file, tiny_dataset, 2)
    with open(ann_file) as f:
        coco = json.load(f)
    assert names == [c['name'] for c in sorted(coco['categories'], key=lambda c: c['id'])]
    first = min(coco['images'], key=lambda i: i['id'])
    assert files[0] == osp.join(tiny_dataset, first['file_name'])
    assert images[0].shape == (first['height'], first['width'], 3)
    anns = [a for a in coco['annotations'] if a['image_id'] == first['id']]
    x, y, w, h = anns[0]['bbox']
    np.testing.assert_allclose(truth[0]['bboxes'][0], [x, y, x + w, y + h], rtol=1e-6)
    assert len(truth[0]['labels']) == len(anns) and len(truth) == 2


def test_grid_counts_the_boxes_of_every_panel(tmp_path):
    images = [np.zeros((32, 32, 3), np.uint8)] * 2
    truth = [dict(bboxes=np.array([[1., 1., 9., 9.]]), labels=np.array([0]))] * 2
    teacher = [dict(bboxes=np.array([[1., 1., 9., 9.], [3., 3., 8., 8.]]),
                    labels=np.array([0, 1]), scores=np.array([0.9, 0.5])),
               dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0), scores=np.zeros(0))]
    out = tmp_path / 'grid.png'
    counts = draw_detection_grid(images, truth, dict(teacher=teacher), ['a', 'b'], str(out))
    assert counts == [[1, 2], [1, 0]]
    assert out.stat().st_size > 5_000
    with pytest.raises(ValueError, match='one prediction per image'):
        draw_detection_grid(images, truth, dict(teacher=teacher[:1]), ['a', 'b'], str(out))


def test_predict_boxes_runs_a_saved_detector_on_image_files(tiny_dataset, tmp_path):
    from kd_det.apis.student import build_student
    model = build_student(STUDENT_CONFIG)
    checkpoint = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    files, images, _, _ = coco_ground_truth(
        osp.join(tiny_dataset, 'annotations', 'instances_val.json'), tiny_dataset, 2)
    boxes = predict_boxes(STUDENT_CONFIG, checkpoint, files, score_thr=0.0)
    assert len(boxes) == 2
    for per_image, image in zip(boxes, images):
        assert len(per_image['bboxes']) == len(per_image['labels']) > 0
        assert per_image['scores'].min() >= 0.0
        height, width = image.shape[:2]
        assert (per_image['bboxes'][:, 2] <= width + 1e-3).all()
        assert (per_image['bboxes'][:, 3] <= height + 1e-3).all()
