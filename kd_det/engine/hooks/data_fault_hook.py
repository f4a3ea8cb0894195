"""Counts the bad images and boxes that FaultTolerantDataset skipped, in every log line."""
from typing import Optional, Sequence

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from kd_det.datasets.data_faults import (BOX_FAULT, FaultTolerantDataset, count_faults,
                                         faults_of_batch, skipped_image_files)

SKIPPED_IMAGES = 'data_faults/skipped_images'
SKIPPED_IMAGE_FILES = 'data_faults/skipped_image_files'
DROPPED_BOXES = 'data_faults/dropped_boxes'
EXAMPLES = 3  # file names quoted when max_skipped_images stops the run


@HOOKS.register_module()
class DataFaultHook(Hook):
    """Logs ``data_faults/skipped_images`` and ``data_faults/dropped_boxes`` (run totals).

    :class:`kd_det.datasets.FaultTolerantDataset` warns about each fault where it happens (in
    a data-loading worker, possibly) and lists it in the sample's metainfo; this hook adds them
    up in the main process. ``skipped_images`` counts distinct image files: a bad image met
    again (next epoch, or by the retry of another sample) counts once. The totals and the
    skipped files live in the message hub's runtime info, which mmengine saves in every
    checkpoint and restores on ``--resume`` (not on ``load_from``), so a resumed run keeps
    counting from where it stopped. Boxes dropped from a COCO file when the dataset was built
    count from the first iteration.

    Args:
        max_skipped_images (int, optional): stop training once more than this many distinct
            images were skipped (the data is worse than expected). Defaults to None (no limit).
    """
    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) writes the iteration's log line

    def __init__(self, max_skipped_images: Optional[int] = None):
        self.max_skipped_images = max_skipped_images
        self._skipped_files = set()

    def before_train(self, runner) -> None:
        hub = runner.message_hub
        if hub.get_info(DROPPED_BOXES) is None:
            dataset = runner.train_dataloader.dataset
            boxes = len(dataset.box_faults) if isinstance(dataset, FaultTolerantDataset) else 0
            hub.update_info(DROPPED_BOXES, boxes)
            hub.update_info(SKIPPED_IMAGES, 0)
        self._skipped_files = set(hub.get_info(SKIPPED_IMAGE_FILES) or ())

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        hub = runner.message_hub
        samples: Sequence = (data_batch or {}).get('data_samples', ())
        faults = faults_of_batch(samples)
        new_files = skipped_image_files(faults) - self._skipped_files
        if new_files:
            self._skipped_files |= new_files
            hub.update_info(SKIPPED_IMAGE_FILES, sorted(self._skipped_files))
        skipped = len(self._skipped_files)
        dropped = (hub.get_info(DROPPED_BOXES) or 0) + count_faults(faults)[BOX_FAULT]
        hub.update_info(SKIPPED_IMAGES, skipped)
        hub.update_info(DROPPED_BOXES, dropped)
        hub.update_scalar(f'train/{SKIPPED_IMAGES}', skipped)
        hub.update_scalar(f'train/{DROPPED_BOXES}', dropped)
        if self.max_skipped_images is not None and skipped > self.max_skipped_images:
            files = sorted(self._skipped_files)
            more = f' (and {skipped - EXAMPLES} more)' if skipped > EXAMPLES else ''
            raise RuntimeError(
                f'{skipped} distinct training images were skipped as unreadable, more than '
                f'max_skipped_images={self.max_skipped_images} of DataFaultHook: '
                f'{", ".join(files[:EXAMPLES])}{more}; the warnings above say what is wrong '
                'with each. Fix or remove them, or raise the limit.')
