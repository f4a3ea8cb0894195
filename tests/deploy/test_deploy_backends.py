"""Exports to every backend, their parity with PyTorch, and the shared post-processing."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import STUDENT_CONFIG
from deploy_helpers import student_ckpt  # noqa: F401  (fixture)
from kd_det.apis.runner import load_config
from kd_det.apis.student import build_student, student_config
from kd_det.benchmark.options import dataset_options
from kd_det.deploy.artifact import DeployArtifactError, resolve_model
from kd_det.deploy.backends import TorchBackend, open_backend
from kd_det.deploy.dense_forward import regroup_outputs
from kd_det.deploy.export import output_differences
from kd_det.deploy.exporter import export_model
from kd_det.deploy.images import prepared_images

pytest.importorskip('ncnn')
pytest.importorskip('pnnx')


@pytest.fixture(scope='module')
def exports(student_ckpt, tiny_dataset, tmp_path_factory):
    """ONNX fp32, ONNX int8 and NCNN exports of the student, and its export reports."""
    root = tmp_path_factory.mktemp('exports')
    options = dataset_options(tiny_dataset)
    reports = {}
    for name, backend, int8 in (('onnx', 'onnxruntime', False), ('int8', 'onnxruntime', True),
                                ('ncnn', 'ncnn', False)):
        reports[name] = export_model(STUDENT_CONFIG, student_ckpt, str(root / name), backend,
                                     int8, (3, 160, 160), calib_images=16, parity_images=4,
                                     cfg_options=options)
    return reports


@pytest.mark.parametrize('name', ['onnx', 'ncnn'])
def test_fp32_exports_match_pytorch_on_real_images(exports, name):
    parity = exports[name]['parity']
    assert parity['num_images'] == 4
    assert parity['max_abs_diff'] <= 1e-3, parity


@pytest.mark.parametrize('name', ['onnx', 'ncnn'])
def test_exports_keep_height_and_width_dynamic(exports, student_ckpt, name):
    exported = open_backend(resolve_model(exports[name]['out_dir']))
    reference = TorchBackend(build_student(STUDENT_CONFIG, student_ckpt))
    image = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    outputs = exported(image)
    assert outputs[0].shape == (1, 72, 12, 16)  # P3 classification of a 96 x 128 input
    assert output_differences(outputs, reference(image))['max_abs_diff'] <= 1e-3


def test_export_directory_records_what_post_processing_needs(exports):
    out_dir = exports['int8']['out_dir']
    with open(osp.join(out_dir, 'deploy.json')) as f:
        manifest = json.load(f)
    assert manifest['backend'] == 'onnxruntime' and manifest['precision'] == 'int8'
    assert manifest['output_groups'] == [5, 5]
    assert manifest['notes']['calibration'] == 'percentile'
    assert manifest['notes']['calibration_images'] == 16
    assert osp.isfile(osp.join(out_dir, 'detector.py'))
    # int8 weights: the file is about a quarter of the fp32 one
    fp32_size = osp.getsize(exports['onnx']['files'][0])
    assert osp.getsize(exports['int8']['files'][0]) < 0.45 * fp32_size


@pytest.mark.parametrize('name', ['pytorch', 'onnx', 'ncnn', 'int8'])
def test_deployed_detector_gives_pytorch_detections(exports, student_ckpt, tiny_dataset, name):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from kd_det.deploy.deployed_detector import DeployedDetector
    cfg = student_config(load_config(STUDENT_CONFIG, cfg_options=dataset_options(tiny_dataset)))
    init_default_scope('mmdet')
    reference = build_student(STUDENT_CONFIG, student_ckpt)
    if name == 'pytorch':  # the checkpoint itself, through the same post-processing
        deployed = DeployedDetector(detector=cfg.model, model_path=student_ckpt,
                                    config_path=STUDENT_CONFIG)
        # the checkpoint runs in the detector the post-processing uses, not in a second copy
        assert deployed.backend.network.detector is deployed.detector
    else:
        deployed = DeployedDetector(detector=cfg.model, model_path=exports[name]['out_dir'])
    for image, sample in prepared_images(cfg, 'val', 3):
        batch = torch.from_numpy(image)
        with torch.no_grad():
            expected = reference.predict(batch, [sample.clone()])[0].pred_instances
            actual = deployed.predict(batch, [sample.clone()])[0].pred_instances
        if name == 'int8':  # quantized: the strongest detections survive, close to fp32
            top = expected.scores.argmax()
            assert actual.scores.max() == pytest.approx(float(expected.scores[top]), abs=0.1)
            continue
        _assert_same_detections(actual, expected)
    assert MODELS.get('DeployedDetector') is DeployedDetector


def _assert_same_detections(actual, expected, top: int = 50):
    """Each of the ``top`` best expected boxes has a twin (IoU > 0.99, same label, score
    within 1e-3) among the actual ones; near-equal scores may swap places, so no order test."""
    from mmdet.structures.bbox import bbox_overlaps
    assert len(expected) >= 10, 'the crafted student should detect plenty'
    assert abs(len(actual) - len(expected)) <= 2
    order = expected.scores.argsort(descending=True)[:top]
    overlaps = bbox_overlaps(expected.bboxes[order], actual.bboxes)
    same = ((overlaps > 0.99) & (expected.labels[order][:, None] == actual.labels[None]) &
            ((expected.scores[order][:, None] - actual.scores[None]).abs() < 1e-3))
    assert bool(same.any(dim=1).all()), f'{int((~same.any(dim=1)).sum())} boxes have no twin'


def test_ncnn_int8_is_refused_with_the_reason(student_ckpt, tmp_path):
    with pytest.raises(ValueError, match='ncnn2table/ncnn2int8'):
        export_model(STUDENT_CONFIG, student_ckpt, str(tmp_path), 'ncnn', int8=True)


def test_model_paths_that_are_not_exports_fail_with_what_to_pass(exports, tmp_path,
                                                                  student_ckpt):
    with pytest.raises(DeployArtifactError, match='does not exist'):
        resolve_model(str(tmp_path / 'missing'))
    with pytest.raises(DeployArtifactError, match='deploy.json is missing'):
        resolve_model(str(tmp_path))
    with pytest.raises(DeployArtifactError, match='pass its config too'):
        resolve_model(student_ckpt)
    # a deleted network file is named
    broken = tmp_path / 'broken'
    broken.mkdir()
    manifest = json.load(open(osp.join(exports['ncnn']['out_dir'], 'deploy.json')))
    json.dump(manifest, open(broken / 'deploy.json', 'w'))
    with pytest.raises(DeployArtifactError, match='model.ncnn.param, which is missing|'
                       'model.ncnn.param.*missing'):
        resolve_model(str(broken))


def test_output_count_mismatch_names_the_likely_cause():
    with pytest.raises(ValueError, match='exported from another model'):
        regroup_outputs([0] * 9, [5, 5])
    assert regroup_outputs(list(range(10)), [5, 5]) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_an_op_pnnx_cannot_convert_raises_ncnn_export_error(monkeypatch, tmp_path):
    import pnnx

    from kd_det.deploy.ncnn_export import NcnnExportError, export_ncnn

    def failing_export(*args, **kwargs):
        raise Exception('unsupported op aten::fancy_op')

    monkeypatch.setattr(pnnx, 'export', failing_export)
    with pytest.raises(NcnnExportError, match='pnnx could not convert.*aten::fancy_op'):
        export_ncnn(build_student(STUDENT_CONFIG), str(tmp_path))


def test_infer_cli_writes_detections_json_and_pictures(exports, tiny_dataset, tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT
    val_dir = osp.join(tiny_dataset, 'val')
    first = sorted(f for f in __import__('os').listdir(val_dir))[0]
    out = tmp_path / 'infer'
    command = [sys.executable, osp.join(REPO_ROOT, 'tools/infer.py'), exports['ncnn']['out_dir'],
               osp.join(val_dir, first), val_dir, '--out', str(out), '--score-thr', '0.5']
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=dict(__import__('os').environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / 'detections.json') as f:
        result = json.load(f)
    assert result['backend'] == 'ncnn fp32' and result['score_thr'] == 0.5
    assert len(result['images']) == 16  # the file named twice runs once
    record = result['images'][0]
    assert record['width'] == 160 and record['detections']
    detection = record['detections'][0]
    assert detection['score'] >= 0.5 and len(detection['bbox']) == 4
    assert detection['class_name'] == load_config(STUDENT_CONFIG).test_dataloader.dataset[
        'metainfo']['classes'][detection['label']]
    assert len(list(out.glob('*.jpg'))) == 16


def test_infer_refuses_a_missing_image(exports, tmp_path):
    from kd_det.deploy.inference import infer_images
    with pytest.raises(FileNotFoundError, match="image '.*nope.png' does not exist"):
        infer_images(exports['onnx']['out_dir'], [str(tmp_path / 'nope.png')], str(tmp_path))


def test_export_onnx_cli_asks_for_a_directory(student_ckpt, tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT
    command = [sys.executable, osp.join(REPO_ROOT, 'tools/export_onnx.py'), STUDENT_CONFIG,
               student_ckpt, '--out', str(tmp_path / 'student.onnx')]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert '--out is a directory now' in proc.stderr
    assert not (tmp_path / 'student.onnx').exists()
