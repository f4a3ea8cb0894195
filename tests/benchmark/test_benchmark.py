"""Benchmark bookkeeping on hand-written run results: aggregation, gap closed, reports, resume."""
import csv
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

from kd_det.benchmark import (RUN_LOCK, Benchmark, BenchmarkSpecError, RunInProgress,
                              claim_run_dir, markdown_table, paired_by_seed)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RELIABILITY_TESTS = osp.join(REPO_ROOT, 'tests', 'reliability')
if RELIABILITY_TESTS not in sys.path:
    sys.path.insert(0, RELIABILITY_TESTS)
from fault_table import fault_case  # noqa: E402 (docs/reliability.md's fault table)

STUDENT = 'configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py'
TEACHER = 'configs/embedded/retinanet_mnv2-w1-fpn128_16e_embedded_teacher.py'
DCD = 'configs/decoupled_cosine/dcd_retinanet_mnv2_embedded.py'


def make_spec(work_root, **extra):
    spec = dict(work_root=work_root,
                teacher=dict(name='teacher', config=osp.join(REPO_ROOT, TEACHER)),
                student=dict(name='student', config=osp.join(REPO_ROOT, STUDENT)),
                methods=[dict(name='distilled', config=osp.join(REPO_ROOT, DCD))],
                seeds=[0, 1], teacher_seed=0, teacher_seeds=[0])
    spec.update(extra)
    return Config(spec)


def write_result(bench, name, seed, mAP):
    method = next(m for m in bench.methods if m.name == name)
    run_dir = bench.run_dir(method, seed)
    os.makedirs(run_dir, exist_ok=True)
    result = dict(mAP=mAP, AP50=2 * mAP, APs=mAP, APm=mAP, APl=mAP, step_time_s=0.5,
                  checkpoint=osp.join(run_dir, 'epoch_1.pth'), method=name, seed=seed,
                  wall_time_s=1.0)
    with open(osp.join(run_dir, 'result.json'), 'w') as f:
        json.dump(result, f)


def test_rows_average_seeds_and_report_the_gap_closed(tmp_path):
    bench = Benchmark(make_spec(str(tmp_path)))
    write_result(bench, 'teacher', 0, 40.0)
    write_result(bench, 'student', 0, 20.0)
    write_result(bench, 'student', 1, 22.0)
    write_result(bench, 'distilled', 0, 30.0)
    write_result(bench, 'distilled', 1, 34.0)
    rows = {row['method']: row for row in bench.rows()}
    assert rows['teacher']['seeds'] == 1 and rows['student']['seeds'] == 2
    assert rows['student']['mAP'] == pytest.approx(21.0)
    assert rows['student']['mAP_std'] == pytest.approx(2 ** 0.5)
    # (32 - 21) / (40 - 21)
    assert rows['distilled']['gap_closed'] == pytest.approx(100 * 11 / 19)
    assert 'gap_closed' not in rows['student'] and 'gap_closed' not in rows['teacher']
    rows['student']['APl'] = -100.0  # COCOeval: no large objects in the evaluation set
    table = markdown_table(list(rows.values()))
    assert '| student | 2 | 21.0 ± 1.4 | - | 42.0 ± 2.8 | 21.0 ± 1.4 | 21.0 ± 1.4 | n/a |' in table
    assert '| gap closed |' in table.splitlines()[0]
    assert '| teacher | 1 | 40.0 | - | 80.0 |' in table  # one seed: no ± 0.0
    assert '| distilled | 2 | 32.0 ± 2.8 | 58 % |' in table


def test_paired_by_seed_gives_per_seed_deltas_and_wins_on_shared_seeds_only():
    rows = [dict(method='cwd', seed=s, mAP=m) for s, m in [(0, 30.0), (1, 36.0), (2, 33.0)]]
    rows += [dict(method='ours', seed=s, mAP=m) for s, m in [(0, 32.0), (1, 35.0), (2, 36.0),
                                                             (3, 99.0)]]
    rows += [dict(method='teacher', role='teacher', seed=0, mAP=45.0)]
    table = paired_by_seed(rows, 'cwd')
    assert [r['method'] for r in table] == ['ours']  # no teacher, no reference row
    ours = table[0]
    assert ours['seeds'] == [0, 1, 2]  # seed 3 has no reference to pair with
    assert ours['deltas'] == [2.0, -1.0, 3.0]
    assert ours['mean_delta'] == pytest.approx(4 / 3) and ours['wins'] == 2 and ours['n'] == 3
    assert ours['std_delta'] == pytest.approx(2.0816660, rel=1e-6)
    with pytest.raises(ValueError, match="reference 'pkd' has no results"):
        paired_by_seed(rows, 'pkd')


def test_paired_report_is_written_when_the_spec_names_a_reference(tmp_path):
    bench = Benchmark(make_spec(str(tmp_path), paired_reference='student'))
    for name, seed, mAP in [('teacher', 0, 40.0), ('student', 0, 20.0), ('student', 1, 22.0),
                            ('distilled', 0, 30.0), ('distilled', 1, 21.0)]:
        write_result(bench, name, seed, mAP)
    paths = bench.write_reports(bench.rows())
    with open(paths['paired']) as f:
        text = f.read()
    assert '| distilled | 0,1 | +4.5 ± 7.8 | 1/2 | +10.0 / -1.0 |' in text


def test_ablation_rows_are_paired_with_the_row_they_change(tmp_path):
    methods = [dict(name='distilled', config=osp.join(REPO_ROOT, DCD)),
               dict(name='distilled minus a term', config=osp.join(REPO_ROOT, DCD), seeds=[0, 1],
                    ablation_of='distilled')]
    bench = Benchmark(make_spec(str(tmp_path), methods=methods, paired_reference='student'))
    for name, seed, mAP in [('teacher', 0, 40.0), ('student', 0, 20.0), ('student', 1, 22.0),
                            ('distilled', 0, 30.0), ('distilled', 1, 31.0),
                            ('distilled minus a term', 0, 29.0),
                            ('distilled minus a term', 1, 33.0)]:
        write_result(bench, name, seed, mAP)
    report = bench.paired_report(bench.per_seed_rows())
    against_student, ablations = report.split('Ablations, each against the row it changes:')
    assert '| distilled | 0,1 | +9.5 ± 0.7 | 2/2 | +10.0 / +9.0 |' in against_student
    assert 'minus a term' not in against_student
    assert '| distilled minus a term | 0,1 | +0.5 ± 2.1 | 1/2 | -1.0 / +2.0 |' in ablations
    methods[1]['ablation_of'] = 'nobody'
    with pytest.raises(BenchmarkSpecError, match="ablation_of 'nobody' is not a row of the spec"):
        Benchmark(make_spec(str(tmp_path), methods=methods))


def test_gap_between_names_any_pair_and_unknown_names_fail(tmp_path):
    methods = [dict(name='distilled', config=osp.join(REPO_ROOT, DCD),
                    gap_between=('student', 'other student')),
               dict(name='other student', role='student', config=osp.join(REPO_ROOT, STUDENT))]
    bench = Benchmark(make_spec(str(tmp_path), methods=methods, seeds=[0]))
    for name, mAP in [('teacher', 50.0), ('student', 10.0), ('other student', 20.0),
                      ('distilled', 15.0)]:
        write_result(bench, name, 0, mAP)
    rows = {row['method']: row for row in bench.rows()}
    assert rows['distilled']['gap_closed'] == pytest.approx(50.0)
    assert 'gap_closed' not in rows['other student']

    methods[0]['gap_between'] = ('student', 'nobody')
    with pytest.raises(BenchmarkSpecError, match="gap_between 'nobody' is not a row of the spec"):
        Benchmark(make_spec(str(tmp_path), methods=methods))


def test_reports_are_written_and_finished_runs_are_not_rerun(tmp_path, monkeypatch, capsys):
    bench = Benchmark(make_spec(str(tmp_path)))
    write_result(bench, 'teacher', 0, 40.0)
    write_result(bench, 'student', 0, 20.0)
    trained = []

    def fake_train(method, seed):
        trained.append((method.name, seed))
        write_result(bench, method.name, seed, 25.0)
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', fake_train)
    bench.run(jobs=2)
    # the teacher and the seed-0 student were done: only the other runs train
    assert sorted(trained) == [('distilled', 0), ('distilled', 1), ('student', 1)]
    assert 'teacher seed 0: done earlier, skipped' in capsys.readouterr().out

    paths = bench.write_reports(bench.rows())
    with open(paths['csv']) as f:
        per_seed = list(csv.DictReader(f))
    assert len(per_seed) == 5 and 'checkpoint' not in per_seed[0]
    with open(paths['markdown']) as f:
        assert f.read().startswith('| method | seeds | mAP | gap closed |')
    assert 'plot' not in paths  # nothing measured: no latency to plot against
    rows = bench.rows()
    rows[0]['latency_torch_ms'] = 10.0
    assert osp.isfile(bench.write_reports(rows)['plot'])


def test_the_teacher_starts_first_and_distillation_waits_for_it(tmp_path, monkeypatch):
    import threading
    import time
    bench = Benchmark(make_spec(str(tmp_path)))
    events, running, lock = [], [], threading.Lock()

    def fake_train(method, seed):
        with lock:
            events.append(('start', method.name, seed))
            running.append(method.name)
        time.sleep(0.05)
        write_result(bench, method.name, seed, 25.0)
        with lock:
            running.remove(method.name)
            events.append(('end', method.name, seed, len(running)))
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', fake_train)
    bench.run(jobs=2)
    assert events[0] == ('start', 'teacher', 0)
    teacher_end = next(i for i, e in enumerate(events) if e[:3] == ('end', 'teacher', 0))
    first_distill = min(i for i, e in enumerate(events) if e[:2] == ('start', 'distilled'))
    assert teacher_end < first_distill  # distillation needs the trained teacher
    # the student does not need the teacher: it trains alongside
    assert events[1] == ('start', 'student', 0)
    assert sorted(e[1:3] for e in events if e[0] == 'start') == [
        ('distilled', 0), ('distilled', 1), ('student', 0), ('student', 1), ('teacher', 0)]
    assert any(e[0] == 'end' and e[3] > 0 for e in events)  # two at a time


def test_fine_tune_rows_start_from_the_same_seed_and_wait_for_it(tmp_path, monkeypatch):
    spec = make_spec(str(tmp_path))
    spec.methods = [dict(name='distilled', config=spec.methods[0]['config']),
                    dict(name='fine-tuned', role='student', config=spec.student['config'],
                         init_from='student'),
                    dict(name='self-distilled', config=spec.methods[0]['config'],
                         init_from='student', teacher_from='fine-tuned')]
    bench = Benchmark(spec)
    order, commands = [], {}
    real_run = subprocess.run

    def fake_run(cmd, *args, **kwargs):
        if 'tools/train.py' not in ' '.join(map(str, cmd)):
            return real_run(cmd, *args, **kwargs)  # e.g. mmengine locating a package
        work_dir = cmd[cmd.index('--work-dir') + 1]
        name = next(m.name for m in bench.methods
                    if m.slug == osp.basename(osp.dirname(work_dir)))
        seed = int(work_dir.rsplit('seed', 1)[1])
        order.append((name, seed))
        commands[(name, seed)] = cmd
        return subprocess.CompletedProcess(cmd, 0)

    def fake_collect(work_dir):
        return dict(mAP=25.0, AP50=40.0, APs=20.0, APm=30.0, APl=40.0, step_time_s=0.1,
                    checkpoint=osp.join(work_dir, 'epoch_8.pth'))

    monkeypatch.setattr('kd_det.benchmark.runner.subprocess.run', fake_run)
    monkeypatch.setattr('kd_det.benchmark.runner.collect_run_result', fake_collect)
    # one job: the patched subprocess.run is process-wide, and mmengine's own subprocess calls
    # from a second training thread would race with it
    bench.run(jobs=1)
    for seed in (0, 1):
        assert order.index(('student', seed)) < order.index(('fine-tuned', seed))
        assert order.index(('fine-tuned', seed)) < order.index(('self-distilled', seed))
        student_ckpt = osp.join(bench.run_dir(bench.method_named('student'), seed),
                                'epoch_8.pth')
        assert f'load_from={student_ckpt}' in commands[('fine-tuned', seed)]
        distill = commands[('self-distilled', seed)]
        assert f'model.architecture.init_cfg.checkpoint={student_ckpt}' in distill
        teacher_ckpt = osp.join(bench.run_dir(bench.method_named('fine-tuned'), seed),
                                'epoch_8.pth')
        assert f'model.teacher_ckpt={teacher_ckpt}' in distill


def test_rows_that_need_each_other_are_refused(tmp_path):
    spec = make_spec(str(tmp_path))
    spec.methods = [dict(name='a', role='student', config=spec.student['config'], init_from='b'),
                    dict(name='b', role='student', config=spec.student['config'], init_from='a')]
    bench = Benchmark(spec)
    write_result(bench, 'teacher', 0, 40.0)
    for seed in (0, 1):
        write_result(bench, 'student', seed, 25.0)
    with pytest.raises(BenchmarkSpecError, match="rows need each other in a circle: 'a' seed 0"):
        bench.run(jobs=1)


def test_a_failed_teacher_skips_the_distillation_runs(tmp_path, monkeypatch, capsys):
    bench = Benchmark(make_spec(str(tmp_path)))
    trained = []

    def failing_teacher(method, seed):
        trained.append(method.name)
        if method.name == 'teacher':
            raise RuntimeError('training teacher (seed 0) failed with exit code 1')
        write_result(bench, method.name, seed, 25.0)
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', failing_teacher)
    with pytest.raises(RuntimeError, match='3 run\\(s\\) failed; first: training teacher'):
        bench.run(jobs=2)
    assert sorted(trained) == ['student', 'student', 'teacher']  # the student needs no teacher
    out = capsys.readouterr().out
    assert 'teacher seed 0: FAILED' in out
    assert "distilled seed 1: skipped, it needs 'teacher' seed 0, which failed" in out


def test_a_failed_run_does_not_stop_independent_runs(tmp_path, monkeypatch, capsys):
    bench = Benchmark(make_spec(str(tmp_path)))
    write_result(bench, 'teacher', 0, 40.0)
    trained = []

    def flaky_train(method, seed):
        if (method.name, seed) == ('student', 0):
            raise RuntimeError('training student (seed 0) failed with exit code 1')
        trained.append((method.name, seed))
        write_result(bench, method.name, seed, 25.0)
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', flaky_train)
    with pytest.raises(RuntimeError, match='1 run\\(s\\) failed; first: training student'):
        bench.run(jobs=1)
    assert len(trained) == 3
    assert 'student seed 0: FAILED' in capsys.readouterr().out


def test_an_only_run_trains_its_methods_and_reports_every_method_with_results(tmp_path,
                                                                            monkeypatch):
    bench = Benchmark(make_spec(str(tmp_path), seeds=[0]), only=['distilled'])
    assert [m.name for m in bench.methods] == ['teacher', 'distilled']
    write_result(bench, 'teacher', 0, 40.0)
    student = next(m for m in bench.spec_methods if m.name == 'student')
    os.makedirs(bench.run_dir(student, 0))
    with open(osp.join(bench.run_dir(student, 0), 'result.json'), 'w') as f:
        json.dump(dict(mAP=20.0, AP50=40.0, APs=20.0, APm=20.0, APl=20.0, step_time_s=0.5,
                       checkpoint='x.pth', method='student', seed=0), f)
    trained = []

    def fake_train(method, seed):
        trained.append(method.name)
        write_result(bench, method.name, seed, 30.0)
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', fake_train)
    bench.run()
    assert trained == ['distilled']
    rows = {row['method']: row for row in bench.rows()}
    assert set(rows) == {'teacher', 'student', 'distilled'}
    assert rows['distilled']['gap_closed'] == pytest.approx(50.0)


def test_a_row_with_its_own_seeds_runs_and_reports_only_those(tmp_path):
    methods = [dict(name='distilled', config=osp.join(REPO_ROOT, DCD)),
               dict(name='ablation', config=osp.join(REPO_ROOT, DCD), seeds=[0])]
    bench = Benchmark(make_spec(str(tmp_path), methods=methods, seeds=[0, 1]))
    planned = [(m.name, s) for m, s in bench.planned_runs()]
    assert ('ablation', 0) in planned and ('ablation', 1) not in planned
    assert ('distilled', 1) in planned
    for name, seed, mAP in [('teacher', 0, 40.0), ('student', 0, 20.0), ('student', 1, 20.0),
                            ('ablation', 0, 25.0), ('ablation', 1, 99.0)]:
        write_result(bench, name, seed, mAP)
    rows = {row['method']: row for row in bench.rows()}
    assert rows['ablation']['seeds'] == 1 and rows['ablation']['mAP'] == 25.0


def test_a_moved_run_directory_still_finds_its_checkpoint(tmp_path):
    old_root, new_root = tmp_path / 'old', tmp_path / 'new'
    bench = Benchmark(make_spec(str(old_root)))
    write_result(bench, 'student', 0, 20.0)
    run_dir = bench.run_dir(bench.methods[1], 0)
    open(osp.join(run_dir, 'epoch_1.pth'), 'w').close()
    os.rename(old_root, new_root)
    moved = Benchmark(make_spec(str(new_root)))
    result = moved.result_of(moved.methods[1], 0)
    assert result['checkpoint'] == osp.join(moved.run_dir(moved.methods[1], 0), 'epoch_1.pth')
    # a checkpoint that exists nowhere stays as recorded (the loader then names the path)
    write_result(moved, 'distilled', 0, 21.0)
    recorded = osp.join(moved.run_dir(moved.methods[2], 0), 'epoch_1.pth')
    assert moved.result_of(moved.methods[2], 0)['checkpoint'] == recorded


def test_a_newly_trained_method_remeasures_every_method_side_by_side(tmp_path, monkeypatch):
    import kd_det.benchmark.measurements as measurements
    measured = []

    def fake_deployment(students, onnx_dir, *args):
        measured.extend(students)  # one sitting: every student of the call side by side
        return {name: dict(latency_ms=float(len(measured))) for name in students}

    def fake_step_times(methods, teacher_config, repeats):
        return {name: 0.1 for name, _, _ in methods}

    monkeypatch.setattr(measurements, 'measure_deployment', fake_deployment)
    monkeypatch.setattr(measurements, 'measure_step_times', fake_step_times)
    bench = Benchmark(make_spec(str(tmp_path)))
    write_result(bench, 'teacher', 0, 40.0)
    write_result(bench, 'student', 0, 20.0)
    bench.measure()
    assert measured == ['teacher', 'student']
    bench.measure()  # cached: nothing new
    assert measured == ['teacher', 'student']
    write_result(bench, 'distilled', 0, 30.0)
    cache = bench.measure()  # a new method: all three again, in one sitting
    assert measured[2:] == ['teacher', 'student', 'distilled']
    assert cache['teacher']['latency_ms'] == 5.0
    assert set(cache['step_time']) == {'student', 'distilled'}
    bench.measure(remeasure=True)
    assert len(measured) == 8


def test_a_run_that_pruned_itself_is_measured_as_its_cut_model(tmp_path, monkeypatch):
    import kd_det.benchmark.measurements as measurements
    from kd_det.benchmark.runs import METRIC_KEYS, collect_run_result
    run = tmp_path / 'run'
    (run / 'pruned').mkdir(parents=True)
    (run / 'vis_data').mkdir()
    (run / 'vis_data' / 'scalars.json').write_text(
        json.dumps({'loss': 0.5, 'time': 0.3}) + '\n' +
        json.dumps({f'coco/{key}': 0.25 for key in METRIC_KEYS}) + '\n')
    (run / 'last_checkpoint').write_text(str(run / 'epoch_4.pth'))
    assert 'deploy_config' not in collect_run_result(str(run))  # no cut model yet
    (run / 'pruned' / 'pruned.py').write_text('')
    (run / 'pruned' / 'pruned.pth').write_text('')
    result = collect_run_result(str(run))
    assert result['mAP'] == 25.0 and result['checkpoint'] == str(run / 'epoch_4.pth')
    assert result['deploy_config'] == str(run / 'pruned' / 'pruned.py')
    assert result['deploy_checkpoint'] == str(run / 'pruned' / 'pruned.pth')
    # the benchmark measures the cut model, without the row's training options
    students = {}
    monkeypatch.setattr(measurements, 'measure_deployment',
                        lambda s, *args: students.update(s) or {n: {} for n in s})
    monkeypatch.setattr(measurements, 'measure_step_times', lambda *args, **kwargs: {})
    bench = Benchmark(make_spec(str(tmp_path / 'bench')))
    write_result(bench, 'teacher', 0, 40.0)
    student = bench.method_named('student')
    write_result(bench, 'student', 0, 20.0)
    path = osp.join(bench.run_dir(student, 0), 'result.json')
    with open(path) as f:
        record = json.load(f)
    record.update(deploy_config=result['deploy_config'],
                  deploy_checkpoint=result['deploy_checkpoint'])
    with open(path, 'w') as f:
        json.dump(record, f)
    bench.measure()
    assert students['student'] == (result['deploy_config'], result['deploy_checkpoint'], {})
    assert students['teacher'][0] == bench.method_named('teacher').config


def test_a_run_directory_is_trained_by_one_process_at_a_time(tmp_path):
    lock = tmp_path / RUN_LOCK
    with claim_run_dir(str(tmp_path)):
        assert lock.read_text().split()[1] == str(os.getpid())
        with pytest.raises(RunInProgress, match=f'being trained by process {os.getpid()}'):
            with claim_run_dir(str(tmp_path)):
                pass
    assert not lock.exists()  # released
    # a claim left by a process that is gone (a killed benchmark) is taken over
    import socket
    import subprocess
    dead = subprocess.Popen(['true'])
    dead.wait()
    lock.write_text(f'{socket.gethostname()} {dead.pid}')
    with claim_run_dir(str(tmp_path)):
        assert lock.read_text().split()[1] == str(os.getpid())
    # another host's claim cannot be checked: refused, with the way out in the message
    lock.write_text('elsewhere 1')
    with pytest.raises(RunInProgress, match=f'delete {lock}'):
        with claim_run_dir(str(tmp_path)):
            pass


def test_a_run_finished_by_another_process_after_planning_is_not_trained_again(
        tmp_path, monkeypatch, capsys):
    bench = Benchmark(make_spec(str(tmp_path), seeds=[0]))
    write_result(bench, 'teacher', 0, 40.0)
    write_result(bench, 'student', 0, 20.0)
    import kd_det.benchmark.runner as benchmark_module

    def another_process_finishes_it_first(cmd, **kwargs):
        raise AssertionError(f'trained a finished run again: {cmd}')

    real_result_of = bench.result_of
    planned = []

    def result_of(method, seed):  # the run is unfinished when planned, finished when claimed
        if method.name == 'distilled' and not planned:
            planned.append(True)
            write_result(bench, 'distilled', 0, 31.0)
            return None
        return real_result_of(method, seed)

    monkeypatch.setattr(bench, 'result_of', result_of)
    monkeypatch.setattr(benchmark_module.subprocess, 'run', another_process_finishes_it_first)
    bench.run(jobs=1)
    assert 'distilled seed 0: finished meanwhile by another benchmark process, mAP 31.0' in \
        capsys.readouterr().out


def test_a_run_in_progress_elsewhere_is_skipped_not_failed(tmp_path, monkeypatch, capsys):
    bench = Benchmark(make_spec(str(tmp_path)))
    write_result(bench, 'teacher', 0, 40.0)
    trained = []

    def busy_train(method, seed):
        if (method.name, seed) == ('student', 1):
            raise RunInProgress('.../student/seed1 is being trained by process 42 on host')
        trained.append((method.name, seed))
        write_result(bench, method.name, seed, 25.0)
        return bench.result_of(method, seed)

    monkeypatch.setattr(bench, 'train_one', busy_train)
    bench.run(jobs=2)  # no exception: the other process will write that result
    assert len(trained) == 3
    assert 'student seed 1: skipped, .../student/seed1 is being trained by process 42' in (
        capsys.readouterr().out)


# ---- spec checks --------------------------------------------------------------------------------
def write_spec(tmp_path, **changes):
    """make_spec's spec written to ``tmp_path/spec.py`` and loaded from there (so that messages
    name the file); a change whose value is ``DROP`` removes the key."""
    spec = make_spec(str(tmp_path / 'runs')).to_dict()
    for key, value in changes.items():
        if value is DROP:
            spec.pop(key)
        else:
            spec[key] = value
    path = tmp_path / 'spec.py'
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in spec.items()))
    return Config.fromfile(str(path)), str(path)


DROP = object()
DISTILLED = dict(name='distilled', config=osp.join(REPO_ROOT, DCD))


def _row(**changes):
    row = dict(DISTILLED, **changes)
    return {key: value for key, value in row.items() if value is not DROP}


BAD_SPECS = {
    'method without config': (
        dict(methods=[_row(config=DROP)]),
        ["methods[0] ('distilled'): no 'config'; add config='configs/...py'"]),
    'method without name': (
        dict(methods=[_row(name=DROP)]), ["methods[0]: no 'name'; add name='...'"]),
    'teacher without config': (
        dict(teacher=dict(name='teacher')), ["teacher ('teacher'): no 'config'"]),
    'no student': (
        dict(student=DROP), ['no student row; add student = dict(name=..., config=...)']),
    'missing config file': (
        dict(methods=[_row(config='configs/nope.py')]),
        ["methods[0] ('distilled'): config 'configs/nope.py' not found (relative paths are "
         'read from']),
    'misspelt method key': (
        dict(methods=[_row(seed=[0])]),
        ["methods[0] ('distilled'): unknown key 'seed'; did you mean 'seeds'? a row takes name, "
         'config, role, cfg_options, gap_between, seeds, ablation_of, init_from, teacher_from']),
    'misspelt teacher key': (
        dict(teacher=dict(name='teacher', config=osp.join(REPO_ROOT, TEACHER), cfg_option={})),
        ["teacher ('teacher'): unknown key 'cfg_option'; did you mean 'cfg_options'? a row takes "
         'name, config, cfg_options']),
    'misspelt spec key': (
        dict(seed=[0]), ["'seed' is not a spec key; did you mean 'seeds'?"]),
    'string seeds': (
        dict(seeds=['0', '1']),
        ["seeds must be a non-empty list of ints >= 0, e.g. [0, 1, 2], got ['0', '1'] (list)"]),
    'float row seeds': (
        dict(methods=[_row(seeds=[0.5])]),
        ["methods[0] ('distilled'): seeds must be a non-empty list of ints >= 0"]),
    'string teacher seed': (dict(teacher_seed='0'), ["teacher_seed must be an int >= 0, got '0'"]),
    'unknown ablation_of': (
        dict(methods=[DISTILLED, _row(name='ablation', ablation_of='distiled')]),
        ["methods[1] ('ablation'): ablation_of 'distiled' is not a row of the spec; did you "
         "mean 'distilled'?"]),
    'ablation of itself': (
        dict(methods=[_row(ablation_of='distilled')]),
        ["methods[0] ('distilled'): ablation_of names the row itself"]),
    'unknown paired_reference': (
        dict(paired_reference='studnet'),
        ["paired_reference 'studnet' is not a row of the spec; did you mean 'student'?"]),
    'gap_between of three rows': (
        dict(methods=[_row(gap_between=['student', 'teacher', 'distilled'])]),
        ['gap_between must be two row names (lower, upper)']),
    'misspelt role': (
        dict(methods=[_row(role='distil')]),
        ["role must be one of ('distill', 'student'), got 'distil' (str); did you mean "
         "'distill'?"]),
    'duplicate names': (
        dict(methods=[_row(name='student')]),
        ["row names must be unique; ['student'] name more than one row"]),
    'cfg_options not a dict': (
        dict(methods=[_row(cfg_options=['model.distiller.loss_fg_weight=4.0'])]),
        ['cfg_options must be a dict of config keys to values']),
    'bad input shape': (
        dict(input_shape=(160, 160)), ['input_shape must be (channels, height, width)']),
    'prune of an unknown row with a misspelt key': (
        dict(prune=dict(source='distiled', ratio=[0.3], finetune_config='x.py')),
        ["prune.source 'distiled' is not a row of the spec; did you mean 'distilled'?",
         "prune: no 'ratios'; prune needs source, ratios, finetune_config",
         "prune: unknown key 'ratio'; did you mean 'ratios'?"]),
}


@pytest.mark.parametrize('case', list(BAD_SPECS))
def test_a_bad_spec_fails_on_loading_naming_the_file_the_row_and_the_key(tmp_path, case):
    changes, fragments = BAD_SPECS[case]
    spec, path = write_spec(tmp_path, **changes)
    with pytest.raises(BenchmarkSpecError) as error:
        Benchmark(spec)
    message = str(error.value)
    assert message.startswith(f'benchmark spec {path}')
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_every_mistake_of_a_spec_is_listed_at_once(tmp_path):
    spec, path = write_spec(tmp_path, seeds=[0, 'one'],
                            methods=[_row(config=DROP), _row(name='other', confg='x.py')])
    with pytest.raises(BenchmarkSpecError) as error:
        Benchmark(spec)
    assert str(error.value).splitlines() == [
        f'benchmark spec {path} has 3 mistakes:',
        "  - methods[0] ('distilled'): no 'config'; add config='configs/...py' (the config it "
        'trains)',
        "  - methods[1] ('other'): unknown key 'confg'; did you mean 'config'? a row takes name, "
        'config, role, cfg_options, gap_between, seeds, ablation_of, init_from, teacher_from',
        "  - seeds must be a non-empty list of ints >= 0, e.g. [0, 1, 2], got [0, 'one'] (list)"]


def test_a_spec_with_helper_variables_and_no_work_root(tmp_path):
    # upper-case and unrelated lower-case names are a spec's own helpers, not mistakes
    spec, _ = write_spec(tmp_path, DCD_CONFIG=DCD, labels_gap=('student', 'teacher'),
                         work_root=DROP)
    assert [m.name for m in Benchmark(spec, work_root=str(tmp_path)).methods] == [
        'teacher', 'student', 'distilled']
    with pytest.raises(BenchmarkSpecError, match="no work_root; add work_root='work_dirs/"
                       "benchmark/<name>' or pass --work-root"):
        Benchmark(spec)


def test_the_benchmark_tool_reports_a_method_without_config_before_training(tmp_path,
                                                                            monkeypatch):
    import importlib.util

    import kd_det.benchmark.runner as benchmark_module

    def no_training(*args, **kwargs):
        raise AssertionError('the benchmark started training a bad spec')

    monkeypatch.setattr(benchmark_module.Benchmark, 'run', no_training)
    _, path = write_spec(tmp_path, methods=[_row(config=DROP)])
    loader = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO_ROOT, 'tools', 'benchmark.py'))
    tool = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(tool)
    with fault_case('benchmark method without config', lost='nothing',
                    raises=BenchmarkSpecError) as outcome:
        tool.main([path, '--skip-measure'])
    assert re.search(r"methods\[0\] \('distilled'\): no 'config'", str(outcome.error))


def test_an_only_run_without_the_prune_source_skips_the_prune_chain(tmp_path, monkeypatch,
                                                                   capsys):
    """``--only`` rows of a spec with a prune chain whose source is not among them: the chain
    is skipped with a line saying so, and the reports are written (it used to stop with
    'prune source ... is not a method of the spec' before any report)."""
    import importlib.util
    spec_dict = make_spec(str(tmp_path), seeds=[0]).to_dict()
    spec_dict['prune'] = dict(source='student', ratios=[0.5], finetune_config=STUDENT)
    spec_path = tmp_path / 'spec.py'
    spec_path.write_text(''.join(f'{key} = {value!r}\n' for key, value in spec_dict.items()))
    loader = importlib.util.spec_from_file_location(
        'benchmark_cli', osp.join(REPO_ROOT, 'tools', 'benchmark.py'))
    cli = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(cli)
    monkeypatch.setattr(Benchmark, 'run', lambda self, jobs=1: None)
    for name, seed, mAP in (('teacher', 0, 40.0), ('distilled', 0, 30.0)):
        bench = Benchmark(Config.fromfile(str(spec_path)), only=['distilled'])
        write_result(bench, name, seed, mAP)
    cli.main([str(spec_path), '--only', 'distilled', '--skip-measure'])
    out = capsys.readouterr().out
    assert "prune chain skipped: its source 'student' is not in --only" in out
    assert osp.exists(osp.join(str(tmp_path), 'results.md'))
