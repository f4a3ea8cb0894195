"""Command-line arguments shared by the export tools (tools/export_onnx.py, export_ncnn.py)."""
import argparse

from mmengine.config import DictAction


def export_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """Parser with CONFIG CHECKPOINT --out --shape --parity-images --cfg-options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config of the checkpoint (a distillation config exports '
                        'its student)')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default=default_out, help='output directory')
    parser.add_argument('--shape', type=int, nargs=2, default=[160, 160], metavar=('H', 'W'),
                        help='input height and width traced at export (H, W stay dynamic)')
    parser.add_argument('--parity-images', type=int, default=8,
                        help='validation images compared with PyTorch (0: skip the check)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser
