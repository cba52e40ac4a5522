"""Command line: `ros2 run facetrack_ros dequantize_yolo model_int8.onnx [model.pt|.onnx]`.

Rebuilds a dynamically quantized ultralytics YOLO ONNX file as a float .pt, or a float ONNX
file, for the detector node's `model` parameter (see facetrack_ros.core.dequantize for why
that is faster on a CPU).
"""

import argparse
from pathlib import Path
import sys

from facetrack_ros.core.dequantize import dequantize_yolo_onnx, ModelConversionError
from facetrack_ros.core.detection import configure_ultralytics_offline


def main(argv: list[str] | None = None) -> int:
    """Convert the file named on the command line; return a process exit code."""
    parser = argparse.ArgumentParser(
        prog='dequantize_yolo', description=__doc__.splitlines()[0].split(': ', 1)[-1])
    parser.add_argument('source', type=Path, help='ultralytics YOLO detection export (.onnx)')
    parser.add_argument('target', type=Path, nargs='?',
                        help='float model to write: a .pt checkpoint, or .onnx for ONNX Runtime '
                        '(default: SOURCE with suffix .pt)')
    args = parser.parse_args(argv)
    configure_ultralytics_offline()
    target = args.target or args.source.with_suffix('.pt')
    try:
        converted = dequantize_yolo_onnx(args.source, target)
    except (ModelConversionError, OSError) as error:
        print(f'dequantize_yolo: {error}', file=sys.stderr)
        return 1
    print(f'{converted.path}: {converted.architecture}, {converted.classes} classes, '
          f'{converted.dequantized} of {converted.tensors} tensors dequantized from int8')
    return 0


if __name__ == '__main__':
    sys.exit(main())
