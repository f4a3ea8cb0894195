"""The one latency path: every model exported, checked and timed side by side."""
from conftest import STUDENT_CONFIG
from kd_det.apis.student import build_student
from kd_det.deploy.latency import compare_deployment, latency_markdown


def test_compare_deployment_measures_every_model_side_by_side(tmp_path):
    models = dict(student=build_student(STUDENT_CONFIG), again=build_student(STUDENT_CONFIG))
    results = compare_deployment(models, str(tmp_path), (3, 64, 64), repeats=2, warmup=1)
    assert list(results) == ['student', 'again']
    for result in results.values():
        assert {'params', 'flops', 'latency_torch_ms', 'latency_ort_ms',
                'onnx_max_abs_diff'} <= set(result)
        assert result['latency_torch_ms'] > 0 and result['latency_ort_ms'] > 0
        assert result['onnx_max_abs_diff'] < 1e-3
    assert results['student']['flops'] == results['again']['flops']
    assert (tmp_path / 'student.onnx').is_file() and (tmp_path / 'again.onnx').is_file()


def test_latency_markdown_reports_ratios_against_the_first_model():
    common = dict(onnx_max_abs_diff=1e-7)
    results = {
        'FPN': dict(params=1_000_000, flops=200_000_000, neck_flops=40_000_000,
                    latency_torch_ms=20.0, latency_ort_ms=10.0, **common),
        'BiFPN': dict(params=800_000, flops=150_000_000, neck_flops=10_000_000,
                      latency_torch_ms=30.0, latency_ort_ms=5.0, **common),
        'no parts': dict(params=500_000, flops=100_000_000, latency_torch_ms=10.0,
                         latency_ort_ms=10.0, **common)}
    lines = latency_markdown(results).splitlines()
    assert lines[0].startswith('| model | params (M) | FLOPs (G) | neck FLOPs (M) |')
    assert lines[3] == ('| BiFPN | 0.800 | 0.150 | 10.0 | 30.00 | 5.00 | 0.75 | 0.25 | 1.50 | '
                        '0.50 | 1.0e-07 |')
    assert lines[4].startswith('| no parts | 0.500 | 0.100 | - | 10.00 | 10.00 | 0.50 | - |')
