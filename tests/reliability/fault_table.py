"""The fault table of docs/reliability.md, kept true by the tests that produce each row.

A reliability test wraps the user's action in :func:`fault_case`; the row it observes (what
the user sees, the exit code a ``tools/*.py`` command would give, what is lost) must equal the
row of the same case in docs/reliability.md, or the test fails. After a deliberate change,
rewrite the rows from the tests' own observations with::

    KD_DET_UPDATE_FAULT_TABLE=1 python -m pytest tests/reliability -q

so the docs can never drift from the behaviour.
"""
import os
import os.path as osp
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Type

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(REPO, 'docs', 'reliability.md')
START, END = '<!-- fault-table:start -->', '<!-- fault-table:end -->'
HEADER = ('| case | what the user sees | exit code | lost |\n'
          '|---|---|---|---|')
MAX_SEEN = 240
UPDATE = os.environ.get('KD_DET_UPDATE_FAULT_TABLE') == '1'


@dataclass
class FaultOutcome:
    """What a fault case showed: set ``sees`` inside the block when nothing is raised (the
    warning or result the user gets); an expected exception fills it in."""
    sees: Optional[str] = None
    error: Optional[BaseException] = None


def normalise(text: str) -> str:
    """One line without this machine's temp dirs, ports and repo path (stable across runs)."""
    text = ' '.join(str(text).split())
    text = re.sub(r"[^\s'\"(]*/pytest-\d+/(?:[^/\s'\"]+/)?", '', text)
    text = re.sub(r'127\.0\.0\.1:\d+', '127.0.0.1:PORT', text)
    text = text.replace(REPO + '/', '')
    if len(text) > MAX_SEEN:
        text = text[:MAX_SEEN - 3].rstrip() + '...'
    return text.replace('|', '\\|')


def read_table(path: str = DOC) -> Dict[str, Tuple[str, str, str]]:
    """``{case: (sees, exit code, lost)}`` from the table between the markers."""
    text = open(path).read()
    if START not in text or END not in text:
        return {}
    rows = {}
    for line in text.split(START, 1)[1].split(END, 1)[0].strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', line.strip())[1:-1]]
        if len(cells) == 4:
            rows[cells[0]] = tuple(cells[1:])
    return rows


def write_row(case: str, row: Tuple[str, str, str], path: str = DOC) -> None:
    """Replace (or append) the row of ``case`` in the table, keeping the order of the others."""
    text = open(path).read()
    rows = read_table(path)
    rows[case] = row
    table = '\n'.join([HEADER] + [f'| {name} | {seen} | {code} | {lost} |'
                                  for name, (seen, code, lost) in rows.items()])
    if START in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
    else:
        before, after = text.rstrip() + '\n\n', '\n'
    with open(path, 'w') as f:
        f.write(f'{before}{START}\n{table}\n{END}{after}')


@contextmanager
def fault_case(case: str, lost: str, raises: Optional[Type[BaseException]] = None):
    """Run a user's action as one row of the fault table.

    Args:
        case: the row's name (unique).
        lost: what the user loses, as the test itself asserts it (e.g. ``'nothing'``).
        raises: the exception the action must stop with (exit code 1); None for an action that
            completes (exit code 0), whose block sets ``outcome.sees``.
    """
    outcome = FaultOutcome()
    try:
        yield outcome
    except BaseException as err:  # noqa: B902 (re-raised unless it is the expected one)
        if raises is None or not isinstance(err, raises):
            raise
        outcome.error = err
        outcome.sees = f'{type(err).__name__}: {err}'
        exit_code = '1'
    else:
        if raises is not None:
            pytest.fail(f'{case}: expected {raises.__name__}, nothing was raised')
        assert outcome.sees, f'{case}: set outcome.sees to what the user sees'
        exit_code = '0'
    row = (normalise(outcome.sees), exit_code, lost)
    if UPDATE:
        write_row(case, row)
        return
    documented = read_table().get(case)
    assert documented == row, (
        f'docs/reliability.md fault table is out of date for {case!r}:\n  documented: '
        f'{documented}\n  observed:   {row}\nRewrite it with KD_DET_UPDATE_FAULT_TABLE=1 '
        'python -m pytest tests/reliability -q')
