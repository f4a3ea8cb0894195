"""Build-time checks of distiller and algorithm arguments, with messages that name the config key.

Each ``check_*`` function takes the key as the user writes it (``'model.distiller.
loss_fg_weight'``), the value, and the rule; it returns the value unchanged or raises
:class:`DistillConfigError` naming the key, the value and its type, what is allowed and the fix.
A string where a number or a bool belongs (``loss_fg_weight='2.0'``, ``fg_center_features=
'False'``, which is truthy) and a negative loss weight are the mistakes they catch first.
"""
import difflib
import math
import numbers
import os
from typing import Optional, Sequence

from torch import nn


class DistillConfigError(ValueError):
    """A distiller or algorithm argument is wrong; the message names the config key and the fix."""


def distiller_key(name: str) -> str:
    """The config key of a distiller argument as users write it: ``model.distiller.<name>``."""
    return f'model.distiller.{name}'


def algorithm_key(name: str) -> str:
    """The config key of an algorithm argument as users write it: ``model.<name>``."""
    return f'model.{name}'


def describe(value) -> str:
    """``value`` as the messages show it: its repr and its type, e.g. ``'2.0' (str)``."""
    return f'{value!r} ({type(value).__name__})'


def did_you_mean(value: str, choices: Sequence[str], cutoff: float = 0.6) -> Optional[str]:
    """The choice closest to a misspelt ``value`` (case-insensitive first), or None.

    ``cutoff`` is difflib's similarity threshold in [0, 1]: higher suggests only near misses.
    """
    lowered = {choice.lower(): choice for choice in choices}
    if value.lower() in lowered:
        return lowered[value.lower()]
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


def _is_number(value) -> bool:
    # bool is an int in Python, but True as a loss weight is a mistake, not 1.0
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low, high, low_inclusive: bool, high_inclusive: bool) -> str:
    if low is not None and high is not None:
        return (f'in {"[" if low_inclusive else "("}{low:g}, {high:g}'
                f'{"]" if high_inclusive else ")"}')
    if low is not None:
        return f'{">=" if low_inclusive else ">"} {low:g}'
    if high is not None:
        return f'{"<=" if high_inclusive else "<"} {high:g}'
    return 'finite'


def check_number(key: str, value, low: Optional[float] = None, high: Optional[float] = None,
                 low_inclusive: bool = True, high_inclusive: bool = True,
                 integer: bool = False, optional: bool = False, why: str = ''):
    """``value`` if it is a finite number (an int with ``integer``) within the bounds.

    Args:
        key: the config key, e.g. ``'model.distiller.temperature'``.
        low, high: bounds, None for none; ``low_inclusive`` / ``high_inclusive`` say whether
            the bound itself is allowed.
        integer: only ints are allowed.
        optional: None is allowed (it stands for a default chosen elsewhere).
        why: appended to the message, e.g. what the bound protects against.

    Raises:
        DistillConfigError: a non-number (a string, a bool, None unless ``optional``), NaN or
            infinity, or a number out of bounds.
    """
    if value is None and optional:
        return value
    kind = 'an int' if integer else 'a number'
    if low is None and high is None:
        bounds, wanted = 'finite', f'a finite {"int" if integer else "number"}'
    else:
        bounds = _bounds(low, high, low_inclusive, high_inclusive)
        wanted = f'{kind} {bounds}'
    if optional:
        wanted += ' or None'
    if not _is_number(value) or (integer and not isinstance(value, numbers.Integral)):
        fix = f'set {key} to {wanted}'
        if isinstance(value, str) and _parses_as_number(value, integer):
            fix = f'write {key}={value.strip()} without quotes'
        raise DistillConfigError(f'{key} must be {wanted}, got {describe(value)}. Fix: {fix}')
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if not math.isfinite(value) or too_low or too_high:
        rule = 'positive (> 0)' if bounds == '> 0' else bounds
        if not math.isfinite(value) and bounds != 'finite':
            rule = f'finite and {rule}'
        detail = f' ({why})' if why else ''
        raise DistillConfigError(f'{key} must be {rule}, got {describe(value)}{detail}. '
                                 f'Fix: set {key} to {wanted}')
    return value


def _parses_as_number(text: str, integer: bool) -> bool:
    try:
        int(text) if integer else float(text)
    except ValueError:
        return False
    return True


def check_weight(key: str, value, optional: bool = False):
    """A loss weight: a finite number >= 0 (0 switches its term off)."""
    return check_number(key, value, low=0.0, optional=optional,
                        why='a loss weight: 0 switches its term off, a negative weight turns '
                        'the loss into a reward')


def check_choice(key: str, value, choices: Sequence[str]):
    """``value`` if it is one of ``choices``; a misspelling gets the closest choice suggested."""
    if isinstance(value, str) and value in choices:
        return value
    close = did_you_mean(value, choices) if isinstance(value, str) else None
    fix = f'; did you mean {close!r}? Fix: set {key}={close!r}' if close else \
        f'. Fix: set {key} to one of these'
    raise DistillConfigError(f'{key} must be one of {tuple(choices)}, got {describe(value)}'
                             f'{fix}')


def check_bool(key: str, value):
    """``value`` if it is True or False (the string ``'False'`` is truthy, so it is refused)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ('true', 'false'):
        fix = f'write {key}={value.strip().capitalize()} without quotes'
    else:
        fix = f'set {key}=True or {key}=False'
    raise DistillConfigError(f'{key} must be True or False, got {describe(value)}. Fix: {fix}')


def check_name(key: str, value, optional: bool = False, what: str = 'a name'):
    """``value`` if it is a non-empty string (or None with ``optional``)."""
    if value is None and optional:
        return value
    if isinstance(value, str) and value:
        return value
    wanted = f'{what} (a non-empty str)' + (' or None' if optional else '')
    raise DistillConfigError(f'{key} must be {wanted}, got {describe(value)}. '
                             f'Fix: set {key} to {wanted}')


def check_path(key: str, value, optional: bool = False):
    """``value`` if it is a path (a str or os.PathLike; or None with ``optional``)."""
    if (value is None and optional) or isinstance(value, (str, os.PathLike)):
        return value
    wanted = 'a file path (str)' + (' or None' if optional else '')
    raise DistillConfigError(f'{key} must be {wanted}, got {describe(value)}. '
                             f'Fix: set {key} to {wanted}')


def check_submodule(key: str, model: nn.Module, name: str, role: str,
                    other_values: str = '') -> None:
    """Raise unless ``model`` (the ``role``, e.g. ``'teacher'``) has the (dotted) submodule.

    Args:
        other_values: what else ``key`` may be, for the message (e.g. ``"'auto'"``).
    """
    names = [n for n, _ in model.named_modules() if n]
    if name in names:
        return
    close = did_you_mean(name, names)
    hint = f'did you mean {close!r}? ' if close else ''
    children = [n for n, _ in model.named_children()]
    raise DistillConfigError(
        f'{key}={name!r}: the {role} ({type(model).__name__}) has no submodule {name!r}; '
        f'{hint}its top-level modules are {children}. Fix: set {key} to '
        f'{other_values + ", or " if other_values else ""}one of them (a dotted path such as '
        "'neck.fpn_convs' reaches inside)")
