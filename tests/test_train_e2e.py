"""A tiny end-to-end train + COCO eval of the embedded student must learn something."""
from kd_det.apis.runner import build_test_runner, build_train_runner
from conftest import STUDENT_CONFIG, tiny_run_options


def test_student_trains_and_reaches_positive_map(tiny_dataset, tmp_path):
    options = tiny_run_options(tiny_dataset, epochs=12, batch_size=8)
    # evaluate on the training images: the question is "does it learn", not "does it generalise"
    options['val_dataloader.dataset.ann_file'] = 'annotations/instances_train.json'
    options['val_evaluator.ann_file'] = tiny_dataset + '/annotations/instances_train.json'
    runner = build_train_runner(STUDENT_CONFIG, work_dir=str(tmp_path), cfg_options=options)
    runner.train()
    metrics = runner.val_loop.run()
    assert metrics['coco/bbox_mAP_50'] > 0.0, metrics

    # the checkpoint written by training reloads for evaluation (weights_only loading)
    ckpt = str(tmp_path / 'epoch_12.pth')
    test_options = dict(options)
    test_options['test_dataloader.dataset.ann_file'] = 'annotations/instances_train.json'
    test_options['test_evaluator.ann_file'] = options['val_evaluator.ann_file']
    tester = build_test_runner(STUDENT_CONFIG, ckpt, work_dir=str(tmp_path / 'test'),
                               cfg_options=test_options)
    test_metrics = tester.test()
    assert abs(test_metrics['coco/bbox_mAP_50'] - metrics['coco/bbox_mAP_50']) < 1e-6

    # deployed: onnxruntime and NCNN exports of the checkpoint score the same mAP through the
    # shared post-processing (issue #16's target: within 0.1 mAP point of PyTorch)
    from kd_det.deploy.evaluate import evaluate_deployed
    from kd_det.deploy.exporter import export_model
    for backend in ('onnxruntime', 'ncnn'):
        out_dir = str(tmp_path / backend)
        export_model(STUDENT_CONFIG, ckpt, out_dir, backend, parity_images=0,
                     cfg_options=test_options)
        deployed = evaluate_deployed(out_dir, cfg_options=test_options,
                                     work_dir=str(tmp_path / f'test_{backend}'))
        assert abs(deployed['coco/bbox_mAP'] - test_metrics['coco/bbox_mAP']) <= 1e-3, backend
