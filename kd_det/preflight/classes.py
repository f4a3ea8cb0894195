"""Pre-flight check ``classes``: student head, training data and teacher agree on the
classes."""
from typing import Dict, Optional, Tuple

from mmengine.config import Config

from kd_det.preflight.checkpoints import _teacher_ckpt
from kd_det.preflight.datasets import dataset_classes
from kd_det.preflight.errors import PreflightError, _short


def _head_num_classes(model: dict) -> Dict[str, int]:
    """``{config path: num_classes}`` of the detection heads in a detector config."""
    found = {}
    for head in ('bbox_head', 'roi_head.bbox_head', 'mask_head', 'roi_head.mask_head'):
        node = model
        for key in head.split('.'):
            node = node.get(key) if isinstance(node, dict) else None
        for index, item in enumerate(node if isinstance(node, list) else [node]):
            if isinstance(item, dict) and isinstance(item.get('num_classes'), int):
                found[head if not isinstance(node, list) else f'{head}[{index}]'] = \
                    item['num_classes']
    return found


def _student_and_teacher(cfg: Config) -> Tuple[Optional[dict], Optional[dict]]:
    from kd_det.models.utils.model_config import resolve_model_cfg
    model = cfg.get('model') or {}
    if not isinstance(model, dict):
        return None, None
    if 'architecture' in model:
        student = resolve_model_cfg(model['architecture'])
        teacher = resolve_model_cfg(model['teacher']) if 'teacher' in model else None
        return (student if isinstance(student, dict) else None,
                teacher if isinstance(teacher, dict) else None)
    return model, None


def check_class_consistency(cfg: Config, teacher_checkpoint: Optional[dict] = None) -> None:
    """Student head, training data and teacher agree on the classes.

    Compares the student's and the teacher's head ``num_classes``, the student's head with the
    training dataset's classes, and the class names the teacher was trained on (the
    ``dataset_meta`` mmengine stores in every checkpoint) with the student's dataset.
    """
    student, teacher = _student_and_teacher(cfg)
    loader = cfg.get('train_dataloader') or {}
    classes = dataset_classes(loader.get('dataset')) if isinstance(loader, dict) else None
    student_heads = _head_num_classes(student or {})
    prefix = 'model.architecture.' if teacher is not None else 'model.'
    if classes is not None:
        for head, num in student_heads.items():
            if num != len(classes):
                raise PreflightError(
                    f'{prefix}{head}.num_classes={num} but the training dataset has '
                    f'{len(classes)} classes {_short(classes)}: set num_classes={len(classes)} '
                    '(or fix train_dataloader.dataset.metainfo.classes)')
    if teacher is None:
        return
    teacher_heads = _head_num_classes(teacher)
    for head in set(student_heads) & set(teacher_heads):
        if student_heads[head] != teacher_heads[head]:
            raise PreflightError(
                f'teacher and student predict different numbers of classes: teacher '
                f'{head}.num_classes={teacher_heads[head]}, student {student_heads[head]}. '
                'Distillation needs a teacher trained on the same classes: use a teacher '
                'config and checkpoint for this dataset')
    meta = (teacher_checkpoint or {}).get('meta') or {}
    teacher_classes = (meta.get('dataset_meta') or {}).get('classes')
    if teacher_classes is None or classes is None:
        return
    teacher_classes = tuple(teacher_classes)
    if teacher_classes == classes:
        return
    path = _teacher_ckpt(cfg)
    if len(teacher_classes) != len(classes):
        detail = (f'the teacher checkpoint was trained on {len(teacher_classes)} classes '
                  f'{_short(teacher_classes)}, the student trains on {len(classes)} '
                  f'{_short(classes)}')
    elif set(teacher_classes) == set(classes):
        detail = ('the teacher checkpoint has the same classes in a different order '
                  f'(teacher {_short(teacher_classes)}, student {_short(classes)}): its label '
                  'indices mean different classes')
    else:
        only_teacher = [c for c in teacher_classes if c not in classes]
        only_student = [c for c in classes if c not in teacher_classes]
        detail = (f'the class names differ: only the teacher has {_short(only_teacher)}, only '
                  f'the student has {_short(only_student)}')
    raise PreflightError(
        f'teacher checkpoint {path!r} does not fit the student\'s data: {detail}. Use a teacher '
        'trained on this dataset, or set train_dataloader.dataset.metainfo.classes to the '
        "teacher's classes in the teacher's order")
