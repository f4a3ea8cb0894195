"""A checkpoint crafted to run code when loaded is refused, and its code never runs.

Covers every way a checkpoint enters kd_det: ``teacher_ckpt``, ``load_from``, ``--resume
PATH``, ``--resume`` (auto, via ``last_checkpoint``) and ``tools/test.py``.
"""
import os

import pytest
import torch

from fault_table import fault_case
from kd_det.apis.runner import build_test_runner, build_train_runner
from kd_det.utils.checkpoint import UnsafeCheckpointError
from reliability_helpers import (DCD_CONFIG, STUDENT_CONFIG, options,  # noqa: F401
                                 tiny_data)


class RunsCode:
    """Unpickling this calls os.system, i.e. runs a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class RunsEval:
    """Unpickling this calls builtins.eval."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f'open({self.marker!r}, "w").close()', ))


@pytest.fixture(params=['os.system', 'eval', 'legacy_format'])
def evil(request, tmp_path):
    """A checkpoint that looks like an mmengine one but creates ``marker`` when unpickled."""
    marker = tmp_path / f'code_ran_{request.param}'
    payload = RunsEval(marker) if request.param == 'eval' else RunsCode(marker)
    checkpoint = dict(state_dict={'w': torch.zeros(2)}, meta=dict(epoch=1, iter=4, hook=payload),
                      message_hub={}, optimizer={})
    path = tmp_path / 'epoch_1.pth'
    torch.save(checkpoint, str(path),
               _use_new_zipfile_serialization=request.param != 'legacy_format')
    yield str(path), marker
    assert not marker.exists(), 'the checkpoint ran code when it was loaded'


def _assert_refused(info, path):
    message = str(getattr(info, 'error', None) or info.value)
    assert f'refused to load {path!r}' in message
    assert 'could run code when loaded' in message and 'weights_only=True' in message
    assert 'If you trust the file, keep only its weights once' in message


def test_teacher_ckpt(evil, tiny_data, tmp_path):
    path, marker = evil
    case = fault_case('teacher_ckpt that pickles code (os.system)', lost='nothing (no code runs)',
                      raises=UnsafeCheckpointError) \
        if marker.name == 'code_ran_os.system' else pytest.raises(UnsafeCheckpointError)
    with case as info:
        build_train_runner(DCD_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data, **{'model.teacher_ckpt': path}))
    _assert_refused(info, path)


def test_load_from(evil, tiny_data, tmp_path):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as info:  # refused before the first step
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data, load_from=path)).train()
    _assert_refused(info, path)


def test_resume_from_a_path(evil, tiny_data, tmp_path):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as info:
        build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path / 'wd'),
                           cfg_options=options(tiny_data), resume=path).train()
    _assert_refused(info, path)


def test_resume_auto_from_the_work_dir(evil, tiny_data, tmp_path):
    from kd_det.preflight import PreflightError
    path, _ = evil
    work_dir = os.path.dirname(path)
    with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(path)
    if 'code_ran_legacy_format' in str(evil[1]):  # not a zip file: never a resume candidate
        with pytest.raises(PreflightError, match="none is complete .*torch's zip format"):
            build_train_runner(STUDENT_CONFIG, work_dir=work_dir,
                               cfg_options=options(tiny_data), resume='auto')
        return
    with pytest.raises(UnsafeCheckpointError) as info:
        build_train_runner(STUDENT_CONFIG, work_dir=work_dir, cfg_options=options(tiny_data),
                           resume='auto').train()
    _assert_refused(info, path)


def test_tools_test_checkpoint(evil, tiny_data, tmp_path):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as info:
        build_test_runner(STUDENT_CONFIG, path, work_dir=str(tmp_path / 'wd'),
                          cfg_options=options(tiny_data)).test()
    _assert_refused(info, path)
