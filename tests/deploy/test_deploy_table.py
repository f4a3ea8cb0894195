"""The deployment table: every model in every runtime, evaluated and timed side by side."""
import json
import os.path as osp

import pytest

from conftest import STUDENT_CONFIG
from deploy_helpers import student_ckpt  # noqa: F401  (fixture)
from kd_det.benchmark.options import dataset_options
from kd_det.deploy.table import deployment_markdown, deployment_table


def test_table_rows_score_and_time_every_model_in_every_runtime(student_ckpt, tiny_dataset,
                                                                 tmp_path):
    models = [dict(name='student', config=STUDENT_CONFIG, checkpoint=student_ckpt),
              dict(name='same student again', config=STUDENT_CONFIG, checkpoint=student_ckpt)]
    rows = deployment_table(models, str(tmp_path), ['PyTorch fp32', 'ORT fp32'], threads=[1],
                            repeats=3, cfg_options=dataset_options(tiny_dataset),
                            log=lambda *_: None)
    assert [(r['model'], r['target']) for r in rows] == [
        ('student', 'PyTorch fp32'), ('student', 'ORT fp32'),
        ('same student again', 'PyTorch fp32'), ('same student again', 'ORT fp32')]
    # the same network scores the same mAP in both runtimes, through the same post-processing
    assert len({round(r['mAP'], 6) for r in rows}) == 1
    assert all(r['latency_1t_ms'] > 0 for r in rows)
    assert rows[1]['max_abs_diff'] <= 1e-3 and rows[0]['max_abs_diff'] is None
    # PyTorch weights: the fp32 state dict (~4 bytes a parameter, plus BN buffers)
    assert rows[0]['size_mb'] * 2**20 == pytest.approx(4 * rows[0]['params'], rel=0.05)
    with open(osp.join(str(tmp_path), 'deployment.json')) as f:
        assert len(json.load(f)) == 4
    table = deployment_markdown(rows, threads=[1])
    assert table.count('\n| student |') == 2 and '1.00x' in table
    assert 'NCNN int8: not available' in table


def test_unknown_target_and_missing_checkpoint_are_refused(student_ckpt, tmp_path):
    model = dict(name='student', config=STUDENT_CONFIG, checkpoint=student_ckpt)
    with pytest.raises(ValueError, match=r"unknown deployment target\(s\) \['NCNN int8'\].*"
                       "ncnn2table"):
        deployment_table([model], str(tmp_path), ['NCNN int8'])
    missing = dict(model, checkpoint=str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError, match='student: checkpoint .*nope.pth does not exist'):
        deployment_table([missing], str(tmp_path), ['ORT fp32'])
