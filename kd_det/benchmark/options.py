"""Config overrides shared by the demo and the benchmark CLIs (schedule length, dataset root)."""
from typing import Dict


def schedule_options(epochs: int) -> Dict[str, int]:
    """Overrides that set a ``cpu_from_scratch`` schedule to ``epochs`` epochs consistently
    (loop length, validation and checkpoint at the end, cosine decay over the whole run)."""
    return {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.checkpoint.interval': epochs,
        'param_scheduler.1.end': epochs,
    }


def dataset_options(data_root: str) -> Dict[str, str]:
    """Point train/val/test at a COCO dataset with the embedded dataset's layout."""
    root = data_root.rstrip('/') + '/'
    return {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
    }
