"""COCO evaluation of a deployed model: the config's test split and evaluator, the network in
its backend, mmdet's post-processing (:class:`~kd_det.deploy.deployed_detector.DeployedDetector`).
"""
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import Runner

from kd_det import preflight
from kd_det.apis.runner import dump_predictions, load_config
from kd_det.apis.student import student_config
from kd_det.deploy.artifact import resolve_model
from kd_det.deploy.deployed_detector import deployed_config


def deployed_detector_config(model_path: str, config: Optional[str] = None,
                             cfg_options: Optional[dict] = None, threads: int = 1,
                             work_dir: Optional[str] = None) -> Config:
    """The detector config of ``model_path`` (``detector.py`` of an export directory, or
    ``config``'s student for a ``.pth``) with its model replaced by the deployed network."""
    model = resolve_model(model_path, config)
    cfg = student_config(load_config(model.config, work_dir, cfg_options))
    if work_dir is None:
        name = osp.basename(osp.normpath(model_path if osp.isdir(model_path)
                                         else osp.dirname(osp.abspath(model_path))))
        cfg.work_dir = osp.join('./work_dirs', 'test_deployed', name)
    return deployed_config(cfg, model_path, config, threads)


def build_deployed_test_runner(model_path: str, config: Optional[str] = None,
                               work_dir: Optional[str] = None,
                               cfg_options: Optional[dict] = None, threads: int = 1,
                               out: Optional[str] = None) -> Runner:
    """Runner that evaluates the deployed ``model_path`` on the config's test split."""
    cfg = deployed_detector_config(model_path, config, cfg_options, threads, work_dir)
    dump_predictions(cfg, out)
    preflight.check_config(cfg, mode='test')
    return Runner.from_cfg(cfg)


def evaluate_deployed(model_path: str, config: Optional[str] = None, threads: int = 1,
                      cfg_options: Optional[dict] = None,
                      work_dir: Optional[str] = None) -> Dict[str, float]:
    """The test evaluator's metrics (``coco/bbox_mAP``, ...) of the deployed model."""
    return build_deployed_test_runner(model_path, config, work_dir, cfg_options,
                                      threads).test()
