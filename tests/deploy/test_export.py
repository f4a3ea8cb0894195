"""ONNX export of a detector's dense network and its onnxruntime parity."""
from conftest import DCD_CONFIG, STUDENT_CONFIG
from kd_det.apis.student import build_student
from kd_det.deploy.export import export_onnx, onnx_parity


def test_onnx_export_matches_pytorch(tmp_path):
    model = build_student(STUDENT_CONFIG)
    onnx_path = str(tmp_path / 'student.onnx')
    names = export_onnx(model, onnx_path, (3, 160, 160))
    assert len(names) == 10  # cls + reg for five levels
    parity = onnx_parity(model, onnx_path, (3, 160, 160), batch_size=2)
    assert parity['max_abs_diff'] < 1e-3, parity


def test_onnx_export_of_a_distillation_config_exports_its_student(tmp_path):
    model = build_student(DCD_CONFIG)
    assert type(model).__name__ == 'RetinaNet' and model.neck.out_channels == 64
    onnx_path = str(tmp_path / 'dcd_student.onnx')
    export_onnx(model, onnx_path, (3, 96, 128))
    assert onnx_parity(model, onnx_path, (3, 96, 128))['max_abs_diff'] < 1e-3
