"""A benchmark spec: its rows (:class:`Method`) and the checks made when it is loaded.

A benchmark spec is an mmengine config (see ``configs/benchmark/embedded.py``)::

    work_root = 'work_dirs/benchmark/embedded'
    teacher = dict(name='teacher', config='configs/...teacher.py')
    student = dict(name='student', config='configs/...student.py')
    methods = [dict(name='PKD (mmrazor)', config='configs/...pkd.py'), ...]  # distillation
    seeds = [0, 1, 2]

The spec is checked when it is loaded (:func:`check_spec`): a row without ``name`` or
``config``, a config file that does not exist, a misspelt key, a seed that is not an int or a
``gap_between``/``ablation_of``/``paired_reference`` naming no row fails before anything
trains, with the spec file, the row and the key named.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from kd_det.models.utils.arg_checks import describe, did_you_mean
from kd_det.utils.names import path_slug


@dataclass
class Method:
    """One row of the benchmark: a config and its role."""
    name: str
    config: str
    role: str  # 'teacher', 'student' or 'distill'
    cfg_options: Dict[str, object] = field(default_factory=dict)
    # (lower, upper) method names: the row reports how much of the mAP gap between them it
    # closes; distillation rows default to (student, teacher)
    gap_between: Optional[Sequence[str]] = None
    # seeds this row runs with (e.g. one seed for an ablation row); None: the benchmark's seeds
    seeds: Optional[Sequence[int]] = None
    # an ablation row's reference: the row it changes, compared with it paired by seed
    ablation_of: Optional[str] = None
    # a row whose checkpoint of the same seed this row starts from (a fine-tune): load_from,
    # or the student's init_cfg in a distillation config
    init_from: Optional[str] = None
    # a row whose checkpoint of the same seed is this distillation row's teacher (instead of
    # the spec's teacher at teacher_seed), e.g. the unpruned model for a pruned student
    teacher_from: Optional[str] = None

    @property
    def slug(self) -> str:
        return path_slug(self.name)


def load_methods(spec) -> List[Method]:
    """Teacher, student and distillation methods of a spec config, in table order.

    Raises:
        BenchmarkSpecError: the spec has mistakes (see :func:`check_spec`).
    """
    check_spec(spec)
    methods = [Method(spec.teacher['name'], spec.teacher['config'], 'teacher',
                      dict(spec.teacher.get('cfg_options', {}))),
               Method(spec.student['name'], spec.student['config'], 'student',
                      dict(spec.student.get('cfg_options', {})),
                      init_from=spec.student.get('init_from'))]
    for item in spec.get('methods', []):
        # role 'student' for a method that trains without the teacher (e.g. another neck)
        role = item.get('role', 'distill')
        gap_between = item.get('gap_between')
        if gap_between is None and role == 'distill':
            gap_between = (methods[1].name, methods[0].name)
        methods.append(Method(item['name'], item['config'], role,
                              dict(item.get('cfg_options', {})), gap_between or None,
                              item.get('seeds'), item.get('ablation_of'),
                              item.get('init_from'), item.get('teacher_from')))
    return methods



class BenchmarkSpecError(ValueError):
    """Mistakes in a benchmark spec; the message names the spec file, the row and the key."""


SPEC_KEYS = ('work_root', 'teacher', 'student', 'methods', 'seeds', 'teacher_seed',
             'teacher_seeds', 'input_shape', 'paired_reference', 'prune')
TEACHER_KEYS = ('name', 'config', 'cfg_options')
STUDENT_KEYS = ('name', 'config', 'cfg_options', 'init_from')
METHOD_KEYS = ('name', 'config', 'role', 'cfg_options', 'gap_between', 'seeds', 'ablation_of',
               'init_from', 'teacher_from')
METHOD_ROLES = ('distill', 'student')


def check_spec(spec) -> None:
    """Check a loaded spec before anything runs; every mistake is listed at once.

    Each row (``teacher``, ``student``, ``methods[i]``) is a dict with a non-empty ``name`` and
    a ``config`` file that exists (relative paths from the current directory), and no keys
    beyond those a row takes (a misspelt key gets the closest one suggested); seeds are ints;
    ``gap_between``, ``ablation_of``, ``init_from``, ``teacher_from``, ``paired_reference``
    and ``prune.source`` name rows of the spec. Top-level names outside the spec's keys are helper variables and allowed, unless
    one is a near miss of a spec key (``seed`` for ``seeds``).

    Raises:
        BenchmarkSpecError: naming the spec file, each wrong row and key, and the fix.
    """
    problems: List[str] = []
    for key in spec.keys():
        close = None if key in SPEC_KEYS or not key.islower() else did_you_mean(
            key, SPEC_KEYS, cutoff=0.7)
        if close:
            problems.append(f'{key!r} is not a spec key; did you mean {close!r}? (a helper '
                            'variable this close to a spec key is refused: rename it)')
    rows = []
    for role, keys in (('teacher', TEACHER_KEYS), ('student', STUDENT_KEYS)):
        if role not in spec:
            problems.append(f'no {role} row; add {role} = dict(name=..., config=...)')
        else:
            rows.append((role, spec[role], keys))
    methods = spec.get('methods', [])
    if not isinstance(methods, (list, tuple)):
        problems.append(f'methods must be a list of dict(name=..., config=...), got '
                        f'{describe(methods)}')
        methods = []
    rows += [(f'methods[{i}]', item, METHOD_KEYS) for i, item in enumerate(methods)]
    checked, names = [], []
    for label, row, allowed in rows:
        if not isinstance(row, dict):
            problems.append(f'{label} must be a dict(name=..., config=...), got {describe(row)}')
            continue
        name = row.get('name')
        if isinstance(name, str) and name:
            label = f'{label} ({name!r})'
            names.append(name)
        problems += [f'{label}: {problem}' for problem in _row_problems(row, allowed)]
        checked.append((label, row))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f'row names must be unique; {duplicates} name more than one row')
    problems += _reference_problems(spec, checked, names)
    problems += _prune_problems(spec.get('prune'))
    problems += _seed_problems(spec)
    if problems:
        where = spec_label(spec)
        if len(problems) == 1:
            raise BenchmarkSpecError(f'{where}: {problems[0]}')
        raise BenchmarkSpecError(f'{where} has {len(problems)} mistakes:\n' +
                                 '\n'.join(f'  - {problem}' for problem in problems))


def spec_label(spec) -> str:
    """'benchmark spec <its file>' (a spec built from a dict has no file)."""
    filename = getattr(spec, 'filename', None)
    return f'benchmark spec {filename}' if filename else 'benchmark spec'


def _row_problems(row: dict, allowed: Sequence[str]) -> List[str]:
    """What is wrong with one row dict (its keys, name, config, role, options, seeds)."""
    problems = []
    for key in row:
        if key not in allowed:
            close = did_you_mean(key, allowed)
            hint = f'did you mean {close!r}? ' if close else ''
            problems.append(f'unknown key {key!r}; {hint}a row takes {", ".join(allowed)}')
    if 'name' not in row:
        problems.append("no 'name'; add name='...' (the row's label in the tables)")
    elif not isinstance(row['name'], str) or not row['name']:
        problems.append(f'name must be a non-empty str, got {describe(row["name"])}')
    config = row.get('config')
    if 'config' not in row:
        problems.append("no 'config'; add config='configs/...py' (the config it trains)")
    elif not isinstance(config, str) or not config:
        problems.append(f'config must be a config file path, got {describe(config)}')
    elif not osp.isfile(config):
        problems.append(f'config {config!r} not found (relative paths are read from '
                        f'{os.getcwd()}: run from the repository root or give a full path)')
    if 'role' in row and row['role'] not in METHOD_ROLES:
        close = did_you_mean(row['role'], METHOD_ROLES) if isinstance(row['role'], str) \
            else None
        hint = f'; did you mean {close!r}?' if close else ''
        problems.append(f'role must be one of {METHOD_ROLES}, got {describe(row["role"])}{hint}')
    options = row.get('cfg_options', {})
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        problems.append("cfg_options must be a dict of config keys to values, e.g. "
                        f"{{'model.distiller.loss_fg_weight': 4.0}}, got {describe(options)}")
    gap_between = row.get('gap_between')
    if gap_between is not None and (not isinstance(gap_between, (list, tuple)) or
                                    len(gap_between) not in (0, 2)):
        problems.append(f'gap_between must be two row names (lower, upper), or () for no gap '
                        f'column, got {describe(gap_between)}')
    if row.get('teacher_from') is not None and row.get('role', 'distill') != 'distill':
        problems.append("teacher_from is for distillation rows (role='distill')")
    if 'seeds' in row:
        problems += _seed_list_problems('seeds', row['seeds'])
    return problems


def _reference_problems(spec, rows: List[tuple], names: List[str]) -> List[str]:
    """Row names given by ``gap_between``, ``ablation_of``, ``paired_reference`` and
    ``prune.source`` that are not rows of the spec."""
    problems, references = [], []
    for label, row in rows:
        gap_between = row.get('gap_between')
        if isinstance(gap_between, (list, tuple)) and len(gap_between) == 2:
            references += [(f'{label}: gap_between', name) for name in gap_between]
        ablation_of = row.get('ablation_of')
        if ablation_of is not None and ablation_of == row.get('name'):
            problems.append(f'{label}: ablation_of names the row itself; name the row it '
                            'changes')
        elif ablation_of is not None:
            references.append((f'{label}: ablation_of', ablation_of))
        for key in ('init_from', 'teacher_from'):
            source = row.get(key)
            if source is not None and source == row.get('name'):
                problems.append(f'{label}: {key} names the row itself; name the row whose '
                                'checkpoint it uses')
            elif source is not None:
                references.append((f'{label}: {key}', source))
    if spec.get('paired_reference') is not None:
        references.append(('paired_reference', spec.paired_reference))
    prune = spec.get('prune')
    if isinstance(prune, dict) and 'source' in prune:
        references.append(('prune.source', prune['source']))
    for where, name in references:
        if name not in names:
            close = did_you_mean(name, names) if isinstance(name, str) else None
            hint = f'did you mean {close!r}?' if close else f'the rows are {names}'
            problems.append(f'{where} {name!r} is not a row of the spec; {hint}')
    return problems


def _prune_problems(prune) -> List[str]:
    """``prune`` must be None or a dict of :func:`kd_det.pruning.prune_chain.run_prune_chain`
    arguments."""
    if prune is None:
        return []
    if not isinstance(prune, dict):
        return [f'prune must be a dict(source=..., ratios=..., finetune_config=...), got '
                f'{describe(prune)}']
    import inspect

    from kd_det.pruning.prune_chain import run_prune_chain
    parameters = inspect.signature(run_prune_chain).parameters
    allowed = [p for p in parameters if p != 'bench']
    required = [p for p in allowed if parameters[p].default is inspect.Parameter.empty]
    problems = [f'prune: no {key!r}; prune needs {", ".join(required)}'
                for key in required if key not in prune]
    for key in prune:
        if key not in allowed:
            close = did_you_mean(key, allowed)
            hint = f'did you mean {close!r}? ' if close else ''
            problems.append(f'prune: unknown key {key!r}; {hint}prune takes '
                            f'{", ".join(allowed)}')
    return problems


def _seed_list_problems(key: str, seeds) -> List[str]:
    if isinstance(seeds, (list, tuple)) and seeds and all(_is_seed(s) for s in seeds):
        return []
    return [f'{key} must be a non-empty list of ints >= 0, e.g. [0, 1, 2], got '
            f'{describe(seeds)}']


def _is_seed(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seed_problems(spec) -> List[str]:
    """The spec's ``seeds``, ``teacher_seed``, ``teacher_seeds``, ``input_shape`` and
    ``work_root``."""
    problems = []
    for key in ('seeds', 'teacher_seeds'):
        if key in spec:
            problems += _seed_list_problems(key, spec[key])
    if 'teacher_seed' in spec and not _is_seed(spec.teacher_seed):
        problems.append(f'teacher_seed must be an int >= 0, got {describe(spec.teacher_seed)}')
    shape = spec.get('input_shape')
    if shape is not None and not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        problems.append(f'input_shape must be (channels, height, width), e.g. (3, 160, 160), '
                        f'got {describe(shape)}')
    if 'work_root' in spec and not (isinstance(spec.work_root, str) and spec.work_root):
        problems.append(f'work_root must be a directory path, got {describe(spec.work_root)}')
    return problems
