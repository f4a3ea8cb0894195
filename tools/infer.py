"""Detect objects in images with any kd_det model: a checkpoint, an ONNX or an NCNN export.

    python tools/infer.py EXPORT_DIR IMAGE_OR_DIR ... --out DIR [--score-thr 0.3]
    python tools/infer.py student.pth IMAGES ... --config CONFIG --out DIR

Writes DIR/detections.json (per image: boxes in original pixels, scores, class ids and names)
and one picture per image with its boxes drawn (``--no-draw`` to skip). Every backend is
post-processed by the same mmdet head code, so the boxes match ``tools/test_deployed.py``.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='kd_det inference on image files')
    parser.add_argument('model', help='export directory (or its .onnx/.param) or a .pth')
    parser.add_argument('images', nargs='+', help='image files or directories')
    parser.add_argument('--out', default='work_dirs/infer', help='output directory')
    parser.add_argument('--config', help='config of a .pth checkpoint')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='keep (and draw) detections with at least this score')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads of the runtime')
    parser.add_argument('--no-draw', action='store_true', help='write only the JSON')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kd_det  # noqa: F401
    from kd_det.deploy.inference import infer_images
    json_path = infer_images(args.model, args.images, args.out, args.config, args.score_thr,
                             args.threads, draw=not args.no_draw)
    print(f'\ndetections: {json_path}')
    return json_path


if __name__ == '__main__':
    main()
