"""A deployed model on disk: one backend's network files plus what post-processing needs.

An export directory holds::

    deploy.json   backend ('onnxruntime' | 'ncnn'), precision ('fp32' | 'int8'), the network
                  files, the input shape it was exported at, and ``output_groups``: how the
                  network's flat outputs regroup into the head's ``predict_by_feat`` arguments
                  (RetinaNet: ``[5, 5]`` = five classification maps, five box maps)
    detector.py   the plain mmdet config of the exported detector; its head decodes the boxes
                  and runs NMS (:class:`kd_det.deploy.deployed_detector.DeployedDetector`), and
                  its test pipeline prepares the images
    model.onnx  or  model.ncnn.param + model.ncnn.bin

A checkpoint (``.pth``) with its config is the PyTorch "artifact" of the same path.
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import List, Optional

MANIFEST = 'deploy.json'
DETECTOR_CONFIG = 'detector.py'
BACKENDS = ('pytorch', 'onnxruntime', 'ncnn')


class DeployArtifactError(ValueError):
    """A model path that is not a deployable artifact, with what to pass instead."""


@dataclass
class DeployManifest:
    """What ``deploy.json`` records; file names are relative to the artifact directory."""
    backend: str
    precision: str
    files: List[str]
    input_shape: List[int]
    output_groups: List[int]
    source_checkpoint: str = ''
    notes: dict = field(default_factory=dict)

    def save(self, out_dir: str) -> str:
        path = osp.join(out_dir, MANIFEST)
        with open(path, 'w') as f:
            json.dump(asdict(self), f, indent=2)
        return path


@dataclass
class DeployedModel:
    """A resolved model path: its backend, network files and detector config."""
    backend: str
    precision: str
    files: List[str]
    config: str
    output_groups: Optional[List[int]] = None
    input_shape: Optional[List[int]] = None

    @property
    def label(self) -> str:
        return f'{self.backend} {self.precision}'


def resolve_model(path: str, config: Optional[str] = None) -> DeployedModel:
    """Resolve what a user passed as the model: an export directory, its ``.onnx`` /
    ``.ncnn.param`` file, or a ``.pth`` checkpoint (with ``config``).

    Raises:
        DeployArtifactError: the path is missing, or is not one of the above, or a checkpoint
            comes without its config; the message says what to pass.
    """
    if not osp.exists(path):
        raise DeployArtifactError(f'model {path!r} does not exist')
    if path.endswith('.pth'):
        if config is None:
            raise DeployArtifactError(
                f'{path} is a PyTorch checkpoint: pass its config too (--config CONFIG), or an '
                'export directory of tools/export_onnx.py / tools/export_ncnn.py')
        return DeployedModel('pytorch', 'fp32', [osp.abspath(path)], config)
    directory = path if osp.isdir(path) else osp.dirname(osp.abspath(path))
    manifest_path = osp.join(directory, MANIFEST)
    if not osp.isfile(manifest_path):
        raise DeployArtifactError(
            f'{path} is not a kd_det export: {manifest_path} is missing. Export with '
            'tools/export_onnx.py or tools/export_ncnn.py (they write deploy.json and '
            'detector.py next to the network), or pass a .pth checkpoint with --config')
    with open(manifest_path) as f:
        manifest = DeployManifest(**json.load(f))
    if manifest.backend not in BACKENDS:
        raise DeployArtifactError(f'{manifest_path}: unknown backend {manifest.backend!r}; '
                                  f'kd_det runs {", ".join(BACKENDS)}')
    files = [osp.join(directory, name) for name in manifest.files]
    missing = [name for name in files if not osp.isfile(name)]
    if missing:
        raise DeployArtifactError(f'{manifest_path} lists {", ".join(missing)}, which '
                                  'is missing; export again')
    detector_config = config or osp.join(directory, DETECTOR_CONFIG)
    return DeployedModel(manifest.backend, manifest.precision, files, detector_config,
                         manifest.output_groups, manifest.input_shape)


def artifact_size_bytes(model: DeployedModel) -> int:
    """Bytes on disk of the network files (the weights a device must hold)."""
    return sum(os.path.getsize(name) for name in model.files)
