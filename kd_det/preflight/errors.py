"""The errors the pre-flight checks raise, and the helpers that word their messages."""
import os.path as osp
from typing import Sequence


class PreflightError(ValueError):
    """A configuration mistake found before training; the message says what to change."""


class DistillShapeError(PreflightError):
    """A distillation loss gets features its connector or loss cannot take."""


def _short(names: Sequence, limit: int = 6) -> str:
    names = list(names)
    more = f', ... ({len(names)} in all)' if len(names) > limit else ''
    return '(' + ', '.join(repr(n) for n in names[:limit]) + more + ')'


def _origin(err: BaseException) -> str:
    """``file.py:line in function`` of the innermost frame that raised ``err``."""
    import traceback
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return 'an unknown place'
    frame = frames[-1]
    return f'{osp.basename(frame.filename)}:{frame.lineno} in {frame.name}'


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
