"""The README demo: generate the embedded dataset, train teacher and student, print a table.

    python tools/demo.py            # the embedded schedules (teacher 16 epochs, student 8)
    python tools/demo.py --quick    # 2 epochs each, for a first look in a few minutes

It also draws both models' boxes next to the ground truth (``<work root>/detections.png``).
The teacher dominates the time, so by default the two train one after the other, each with all
cores (on 2 cores the teacher steps ~0.8 s/iteration with 2 threads, ~1.1 s beside the student
with 1); ``--jobs 2`` trains them side by side instead.
"""
import argparse
import os.path as osp
import time

# Short enough for a few minutes on 2 cores, long enough that both models detect something: on the
# whole 800-image train split this is 200 iterations each, past the 100-iteration warm-up.
QUICK_EPOCHS = 2


NUM_PICTURE_IMAGES = 4
SCORE_THR = 0.3


def draw_demo_detections(bench, seed: int, data_root: str, out_file: str) -> None:
    """Ground truth, teacher and student boxes (score >= SCORE_THR) on the first val images."""
    from kd_det.visualization.detections import (coco_ground_truth, draw_detection_grid,
                                                 predict_boxes)
    files, images, truth, names = coco_ground_truth(
        osp.join(data_root, 'annotations', 'instances_val.json'), data_root, NUM_PICTURE_IMAGES)
    predictions = {}
    for method in bench.methods:
        checkpoint = bench.result_of(method, seed)['checkpoint']
        predictions[method.name.split(':')[0]] = predict_boxes(method.config, checkpoint, files,
                                                               SCORE_THR)
    draw_detection_grid(images, truth, predictions, names, out_file,
                        title=f'boxes with score >= {SCORE_THR}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='kd_det demo on the embedded dataset')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-root', default=None)
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_EPOCHS} epochs for teacher and student (minutes; the '
                             'numbers are not comparable with the full schedules)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings run side by side (default 1: one after the other)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    from mmengine.config import Config

    import kd_det  # noqa: F401
    from kd_det.apis.student import build_student
    from kd_det.benchmark import Benchmark
    from kd_det.benchmark.options import dataset_options, schedule_options
    from kd_det.datasets.synthetic import generate_dataset
    from kd_det.deploy.complexity import params_and_flops

    data_root = args.data_root
    if not osp.isfile(osp.join(data_root, 'annotations', 'instances_val.json')):
        print(f'generating the embedded dataset in {data_root} ...', flush=True)
        generate_dataset(data_root, seed=0)
    spec = Config.fromfile('configs/benchmark/demo.py')
    work_root = args.work_root or spec.work_root + ('_quick' if args.quick else '')
    bench = Benchmark(spec, seeds=[args.seed], work_root=work_root,
                      cfg_options=dataset_options(data_root))
    if args.quick:
        for method in bench.methods:
            method.cfg_options.update(schedule_options(QUICK_EPOCHS))
    bench.run(jobs=args.jobs)

    print('\n| model | mAP | AP50 | APs | params (M) | FLOPs (G) |\n|---|---|---|---|---|---|')
    for method in bench.methods:
        result = bench.result_of(method, args.seed)
        cost = params_and_flops(build_student(method.config), bench.input_shape)
        print(f'| {method.name} | {result["mAP"]:.1f} | {result["AP50"]:.1f} | '
              f'{result["APs"]:.1f} | {cost["params"] / 1e6:.2f} | {cost["flops"] / 1e9:.2f} |')
    picture = osp.join(work_root, 'detections.png')
    draw_demo_detections(bench, args.seed, data_root, picture)
    print(f'\ndetections of both models on {NUM_PICTURE_IMAGES} val images: {picture}')
    print(f'demo finished in {(time.time() - start) / 60:.1f} min; runs in {work_root}')


if __name__ == '__main__':
    main()
