"""kd_det.compat: mmrazor imports on today's torch, safe checkpoint loading, kd_det:: paths."""
import os
import os.path as osp

import pytest
import torch

import kd_det  # noqa: F401
from kd_det.compat import QuantizationUnavailableError
from kd_det.utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file


def test_mmrazor_distillation_and_pruning_import():
    import mmrazor.engine  # noqa: F401
    from mmrazor.models import (ConfigurableDistiller, FpnTeacherDistill, ItePruneAlgorithm,
                                SingleTeacherDistill)
    from mmrazor.models.mutators import ChannelMutator
    for cls in (ConfigurableDistiller, FpnTeacherDistill, ItePruneAlgorithm,
                SingleTeacherDistill, ChannelMutator):
        assert isinstance(cls, type)


def test_mmrazor_quantization_fails_with_a_clear_message():
    from mmrazor.registry import MODELS
    with pytest.raises(QuantizationUnavailableError, match='torch.ao.quantization'):
        MODELS.build(dict(_scope_='mmrazor', type='MMArchitectureQuant',
                          architecture=dict(type='x'), quantizer=dict(type='x')))


def _mmengine_checkpoint(tmp_path):
    """A checkpoint the way mmengine's Runner writes it: weights, meta, message hub, optimizer."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    hub = MessageHub.get_instance('kd_det_test_compat')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 7)
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                         message_hub=hub.state_dict(),
                         meta=dict(epoch=1, iter=7, dataset_meta=dict(classes=('a', 'b')))),
                    path)
    return model, path


def test_mmengine_checkpoint_round_trip_under_weights_only(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    model, path = _mmengine_checkpoint(tmp_path)
    # mmengine's own loader (load_from, --resume, teacher_ckpt) goes through kd_det's
    checkpoint = _load_checkpoint(path, map_location='cpu')
    for key, value in model.state_dict().items():
        assert torch.equal(checkpoint['state_dict'][key], value)
    assert checkpoint['meta']['iter'] == 7
    assert checkpoint['message_hub']['log_scalars']['train/loss'].current() == 0.5
    assert 'state' in checkpoint['optimizer']


class _RunsCode:
    """Pickles as a call to os.system: loading it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_checkpoint_with_pickled_code_is_refused_and_never_runs(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    marker = tmp_path / 'code_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=_RunsCode(marker)), path)
    with pytest.raises(UnsafeCheckpointError, match='refused to load .*os.system|posix.system'):
        load_checkpoint_file(path)
    with pytest.raises(UnsafeCheckpointError, match='weights_only=True protection'):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth.* does not exist'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


def test_kd_det_config_paths_resolve_like_mmdet_ones(tmp_path):
    from mmengine.config import Config
    child = tmp_path / 'child.py'
    child.write_text("_base_ = 'kd_det::embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'\n"
                     "model = dict(neck=dict(out_channels=32))\n")
    cfg = Config.fromfile(str(child))
    assert cfg.model.neck.out_channels == 32
    assert cfg.model.backbone.type == 'MobileNetV2'
    assert osp.isdir(osp.join(osp.dirname(kd_det.__file__), '.mim', 'configs'))


def test_mapped_loading_gives_the_same_tensors_and_reads_legacy_files(tmp_path):
    import torch

    from kd_det.utils.checkpoint import load_checkpoint_file
    state = {'state_dict': {'w': torch.arange(6.).view(2, 3)}, 'meta': {'epoch': 3}}
    zip_path, legacy_path = str(tmp_path / 'new.pth'), str(tmp_path / 'legacy.pth')
    torch.save(state, zip_path)
    torch.save(state, legacy_path, _use_new_zipfile_serialization=False)
    for path in (zip_path, legacy_path):  # the legacy format cannot be mapped: it is read
        loaded = load_checkpoint_file(path, map_location='cpu', mmap=True)
        assert torch.equal(loaded['state_dict']['w'], state['state_dict']['w'])
        assert loaded['meta'] == {'epoch': 3}
