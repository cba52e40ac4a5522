"""Turn a dynamically quantized YOLO ONNX file back into a float ultralytics checkpoint or ONNX.

onnxruntime's dynamic int8 quantization (`quantize_dynamic`) replaces every convolution with
DynamicQuantizeLinear + ConvInteger, which onnxruntime runs on x86 CPUs several times slower
than the float convolutions it replaced (YOLOv8n on a 640x640 input: 193 ms against 57 ms in
float on this project's 2-core VM). The file still holds every weight, as int8 with a scale,
under the PyTorch state-dict names ultralytics exported it with, so the network can be rebuilt
from ultralytics' own architecture YAML and saved as a .pt: the same weights, run in float,
with rectangular inference (a 640x360 frame becomes 640x384 instead of 640x640: 36 ms) and
every ultralytics export (TensorRT, OpenVINO, float ONNX) open to it.
"""

import ast
import dataclasses
import datetime
import hashlib
import os
from pathlib import Path
import re
import tempfile
from typing import Any

import numpy as np

#: Suffixes of the three initializers onnxruntime's dynamic quantization writes per weight.
QUANTIZED_SUFFIXES = ('_quantized', '_scale', '_zero_point')
#: How the ultralytics exporter names the model in the ONNX `description` metadata.
ARCHITECTURE_PATTERN = re.compile(r'Ultralytics (YOLO[0-9a-z.-]+) model', re.IGNORECASE)


class ModelConversionError(ValueError):
    """The file is not a YOLO detection ONNX this converter can rebuild."""


@dataclasses.dataclass(frozen=True)
class ConvertedModel:
    """What dequantize_yolo_onnx wrote.

    architecture: the ultralytics model name, e.g. 'yolov8n'.
    dequantized: how many weights were int8 in the source (the rest were stored as float).
    """

    path: Path
    architecture: str
    classes: int
    tensors: int
    dequantized: int
    source_sha256: str


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _float_weight(name: str, initializers: dict[str, np.ndarray]) -> tuple[np.ndarray, bool]:
    """Return the float value of state-dict entry name, and whether it was quantized."""
    if name in initializers:
        return initializers[name].astype(np.float32), False
    quantized, scale, zero_point = (initializers.get(name + suffix)
                                    for suffix in QUANTIZED_SUFFIXES)
    if quantized is None or scale is None or zero_point is None:
        raise KeyError(name)
    # Per-tensor parameters are scalars; per-channel ones run along the output channels.
    shape = (-1,) + (1,) * (quantized.ndim - 1)
    scale = scale.astype(np.float32).reshape(shape if scale.size > 1 else ())
    zero_point = zero_point.astype(np.float32).reshape(shape if zero_point.size > 1 else ())
    return (quantized.astype(np.float32) - zero_point) * scale, True


def _read_onnx(source: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Return the metadata and the initializers of an ONNX file."""
    import onnx
    from onnx import numpy_helper
    try:
        model = onnx.load(str(source))
    except Exception as error:  # protobuf raises several types for a damaged file
        raise ModelConversionError(f'{source} is not a readable ONNX file: {error}') from error
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return metadata, initializers


def _architecture(metadata: dict[str, str], source: Path) -> tuple[str, dict[int, str], Any]:
    """Return the model name, class names and image size an ultralytics export records."""
    if metadata.get('task') != 'detect':
        raise ModelConversionError(
            f'{source} is not an ultralytics detection export (metadata task='
            f'{metadata.get("task")!r})')
    match = ARCHITECTURE_PATTERN.search(metadata.get('description', ''))
    if not match:
        raise ModelConversionError(
            f'{source} does not name its YOLO architecture in the description metadata')
    try:
        names = ast.literal_eval(metadata['names'])
        imgsz = ast.literal_eval(metadata.get('imgsz', '[640, 640]'))
    except (KeyError, ValueError, SyntaxError) as error:
        raise ModelConversionError(f'{source} has no readable class names: {error}') from error
    return match.group(1).lower(), names, imgsz


def dequantize_yolo_onnx(source: Path, target: Path) -> ConvertedModel:
    """Rebuild the YOLO detector in source (an ultralytics ONNX export) in float at target.

    target is a .pt checkpoint, or a .onnx file: that checkpoint exported by ultralytics with
    a dynamic input size (ONNX Runtime infers float YOLOv8n on one thread of this project's VM
    in 34 ms a 640x360 frame, torch in 45-50). Every learned tensor of the architecture must be in
    the file, as float or as onnxruntime dynamic-quantized int8; tensors the architecture fixes
    (YOLOv8's DFL projection) keep their exact value. target is written atomically. Raise
    ModelConversionError if the file cannot be rebuilt (not an ultralytics detection export,
    unknown architecture, missing or misshapen weights), or if target is source.
    """
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise ModelConversionError(f'{target} is the source file: name another target')
    if target.suffix != '.onnx':
        return _rebuild(source, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        checkpoint = _rebuild(source, Path(work) / 'float.pt')
        os.replace(export_onnx(checkpoint.path), target)
    return dataclasses.replace(checkpoint, path=target)


def export_onnx(checkpoint: Path) -> Path:
    """Export an ultralytics checkpoint beside it as ONNX (dynamic input size); return its path."""
    from facetrack_ros.core.detection import configure_ultralytics_offline
    configure_ultralytics_offline()
    from ultralytics import YOLO
    # simplify would need onnxslim, which ultralytics would try to install.
    return Path(YOLO(str(checkpoint)).export(format='onnx', dynamic=True, simplify=False))


def _rebuild(source: Path, target: Path) -> ConvertedModel:
    """Rebuild source's detector as a float .pt checkpoint at target (dequantize_yolo_onnx)."""
    import torch
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel

    metadata, initializers = _read_onnx(source)
    architecture, names, imgsz = _architecture(metadata, source)
    try:
        model = DetectionModel(f'{architecture}.yaml', nc=len(names), verbose=False)
    except (FileNotFoundError, KeyError, AssertionError) as error:
        raise ModelConversionError(
            f'ultralytics {ultralytics.__version__} has no architecture {architecture!r} '
            f'(from {source}): {error}') from error
    # Taken before fusion, which marks every fused convolution as not trainable.
    fixed = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    # Exports are traced after batch-norm fusion, so the file holds the fused weights.
    model = model.eval().fuse(verbose=False)
    state = model.state_dict()
    weights, missing, dequantized = {}, [], 0
    for name, current in state.items():
        if name in fixed:
            continue
        try:
            value, was_quantized = _float_weight(name, initializers)
        except KeyError:
            missing.append(name)
            continue
        if tuple(value.shape) != tuple(current.shape):
            raise ModelConversionError(
                f'{source}: {name} has shape {value.shape}, {architecture} needs '
                f'{tuple(current.shape)}')
        weights[name] = torch.from_numpy(value)
        dequantized += was_quantized
    if missing:
        raise ModelConversionError(
            f'{source} lacks {len(missing)} of the {len(state)} tensors of {architecture} '
            f'(first: {", ".join(missing[:3])}); it is not that model or was not exported by '
            'ultralytics with its state-dict names')
    model.load_state_dict(weights, strict=False)
    model.names = names

    digest = file_sha256(source)
    checkpoint = {
        'model': model,
        'train_args': {'task': 'detect', 'model': f'{architecture}.yaml', 'imgsz': imgsz},
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'version': ultralytics.__version__,
        'converted_from': {'path': str(source), 'sha256': digest},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + '.partial')
    torch.save(checkpoint, partial)
    os.replace(partial, target)
    return ConvertedModel(target, architecture, len(names), len(state), dequantized, digest)


def cached_float_model(source: Path, cache_dir: Path, suffix: str = '.pt') -> Path:
    """Return a float model of source in cache_dir, converting only if that file is not there.

    suffix: '.pt' or '.onnx' (dequantize_yolo_onnx). The file is named after the source's
    content, so a changed source is converted again.
    """
    source = Path(source)
    target = Path(cache_dir) / f'{source.stem}-{file_sha256(source)[:12]}-float{suffix}'
    if not target.exists():
        dequantize_yolo_onnx(source, target)
    return target
