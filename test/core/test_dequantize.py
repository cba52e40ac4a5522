"""Rebuilding the shared dynamic-int8 YOLOv8n ONNX file as a float ultralytics checkpoint."""

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from facetrack_ros import dequantize_yolo
from facetrack_ros.core.dequantize import (cached_float_model, dequantize_yolo_onnx,
                                           file_sha256, ModelConversionError)
from facetrack_ros.core.detection import OnnxPersonDetector, YoloPersonDetector
from facetrack_ros.core.tracking import box_iou, TrackerConfig

#: Every FRAME_STEP-th of the first FRAMES frames of each shared video is compared.
FRAMES, FRAME_STEP = 250, 10
#: Share of either model's detections the other must find at IoU >= MATCH_IOU. Measured: the
#: float model finds 39 of the ONNX's 39 people on hamilton_clip.mp4 and 156 of 161 on
#: pedestrians_vtest.avi (157 of its own); it runs without activation quantization, so
#: borderline people differ slightly.
MIN_AGREEMENT = 0.95
MATCH_IOU = 0.5
#: Mean IoU of the matched boxes (measured 0.97 and 0.95).
MIN_MEAN_IOU = 0.9
#: Least IoU of a box of the float checkpoint and the same box of its float ONNX export: one
#: float network, two runtimes (rounding only).
SAME_NETWORK_MIN_IOU = 0.98


@pytest.fixture(scope='module')
def onnx_model(shared_dir) -> Path:
    """Return the shared dynamic-int8 YOLOv8n ONNX file."""
    return shared_dir / 'models' / 'yolov8n_int8.onnx'


@pytest.fixture(scope='module')
def converted(onnx_model, tmp_path_factory):
    """Convert the shared model once for the module."""
    return dequantize_yolo_onnx(onnx_model, tmp_path_factory.mktemp('float') / 'yolov8n.pt')


def _matches(reference: list[np.ndarray], other: list[np.ndarray]) -> list[float]:
    """Greedily pair each reference box with the best unused other box; return the IoUs."""
    unused = list(other)
    ious = []
    for box in reference:
        if not unused:
            break
        overlaps = box_iou(box, np.stack(unused))
        best = int(np.argmax(overlaps))
        if overlaps[best] >= MATCH_IOU:
            ious.append(float(overlaps[best]))
            unused.pop(best)
    return ious


@pytest.fixture(scope='module')
def converted_onnx(onnx_model, tmp_path_factory):
    """Convert the shared model once for the module, to a float ONNX file."""
    return dequantize_yolo_onnx(onnx_model, tmp_path_factory.mktemp('float') / 'yolov8n.onnx')


def _agreement(video: str, shared_dir: Path, reference: YoloPersonDetector,
               other: YoloPersonDetector) -> tuple[list[int], list[float]]:
    """Return both detectors' person counts on the video's compared frames, and matched IoUs."""
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / video))
    counts = [0, 0]
    ious = []
    for index in range(FRAMES):
        ok, frame = capture.read()
        assert ok, f'{video} ended at frame {index}'
        if index % FRAME_STEP:
            continue
        boxes = [[person.box for person in detector.detect(frame)]
                 for detector in (reference, other)]
        counts = [counts[0] + len(boxes[0]), counts[1] + len(boxes[1])]
        ious += _matches(boxes[0], boxes[1])
    capture.release()
    assert counts[0] > 30, f'too few people in {video} to compare: {counts}'
    return counts, ious


@pytest.mark.parametrize('video', ['hamilton_clip.mp4', 'pedestrians_vtest.avi'])
def test_float_model_finds_the_people_the_onnx_finds(video, onnx_model, converted, shared_dir):
    """Same network, same weights: the two files detect the same people on real video.

    Compared are the boxes people get tracks from (above track_low_thresh): the fainter ones
    the detector also keeps sit at the threshold, where int8 and float weights differ most.
    """
    tracked = TrackerConfig().track_low_thresh
    counts, ious = _agreement(video, shared_dir,
                              YoloPersonDetector(str(onnx_model), confidence=tracked),
                              YoloPersonDetector(str(converted.path), confidence=tracked))
    assert len(ious) >= MIN_AGREEMENT * max(counts), (len(ious), counts)
    assert np.mean(ious) >= MIN_MEAN_IOU


@pytest.mark.parametrize('video', ['hamilton_clip.mp4', 'pedestrians_vtest.avi'])
def test_float_onnx_export_finds_what_the_checkpoint_finds(video, converted, converted_onnx,
                                                           shared_dir):
    """The float ONNX file is the float checkpoint run by ONNX Runtime: the same boxes."""
    assert converted_onnx.path.suffix == '.onnx'
    assert [p.name for p in converted_onnx.path.parent.iterdir()] == ['yolov8n.onnx']
    counts, ious = _agreement(video, shared_dir, YoloPersonDetector(str(converted.path)),
                              YoloPersonDetector(str(converted_onnx.path)))
    assert counts[0] == counts[1] == len(ious), (len(ious), counts)
    assert min(ious) >= SAME_NETWORK_MIN_IOU


def test_an_image_size_off_the_stride_is_rounded_up_as_ultralytics_rounds_it(
        converted_onnx, shared_dir):
    """image_size 600 on a dynamic ONNX model: ONNX Runtime detects at 608, as ultralytics.

    Not rounded, the model's concatenations do not fit, and the file does not load at all.
    """
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / 'pedestrians_vtest.avi'))
    ok, frame = capture.read()
    capture.release()
    assert ok
    ours = OnnxPersonDetector(str(converted_onnx.path), image_size=600, threads=1)
    theirs = YoloPersonDetector(str(converted_onnx.path), image_size=600)
    a, b = ours.detect(frame), theirs.detect(frame)
    assert len(a) == len(b) >= 3
    for mine, other in zip(a, b):
        assert np.allclose(mine.box, other.box, atol=0.5)
    for detector in (ours, theirs):
        detector.close()


def test_float_model_runs_on_the_threads_asked_for(converted):
    """threads=0 means every CPU: not the cores - 1 ultralytics picks for training."""
    for threads, expected in ((1, 1), (0, len(os.sched_getaffinity(0)))):
        detector = YoloPersonDetector(str(converted.path), threads=threads)
        assert torch.get_num_threads() == expected
        detector.close()


def test_checkpoint_records_model_and_provenance(converted, onnx_model):
    """The .pt names its classes and the file it came from; every conv weight was int8."""
    checkpoint = torch.load(converted.path, weights_only=False)
    assert converted.architecture == 'yolov8n' and converted.classes == 80
    assert checkpoint['model'].names[0] == 'person'
    assert checkpoint['converted_from']['sha256'] == file_sha256(onnx_model)
    quantized = [init.name for init in onnx.load(str(onnx_model)).graph.initializer
                 if init.name.endswith('_quantized')]
    # YOLOv8's DFL projection is fixed by the architecture: kept exact, not taken from int8.
    assert converted.dequantized == len(quantized) - 1
    dfl = checkpoint['model'].model[-1].dfl.conv.weight.flatten()
    assert torch.equal(dfl, torch.arange(dfl.numel(), dtype=dfl.dtype))


def test_refuses_files_it_cannot_rebuild(shared_dir, onnx_model, tmp_path):
    """Another network, a damaged file and missing weights: a clear error, nothing written."""
    target = tmp_path / 'out.pt'
    with pytest.raises(ModelConversionError, match='not an ultralytics detection export'):
        dequantize_yolo_onnx(shared_dir / 'models' / 'yunet_s_640_640.onnx', target)

    damaged = tmp_path / 'damaged.onnx'
    damaged.write_bytes(onnx_model.read_bytes()[:100_000])
    with pytest.raises(ModelConversionError, match='not a readable ONNX file'):
        dequantize_yolo_onnx(damaged, target)

    model = onnx.load(str(onnx_model))
    dropped = next(init for init in model.graph.initializer
                   if init.name == 'model.4.m.0.cv1.conv.weight_quantized')
    model.graph.initializer.remove(dropped)
    incomplete = tmp_path / 'incomplete.onnx'
    onnx.save(model, str(incomplete))
    with pytest.raises(ModelConversionError, match=r'lacks 1 of .*model\.4\.m\.0\.cv1\.conv'):
        dequantize_yolo_onnx(incomplete, target)
    assert sorted(tmp_path.iterdir()) == sorted([damaged, incomplete])


def test_cache_converts_once_per_source_content(onnx_model, tmp_path):
    """A second call reuses the file; its name carries the source's digest."""
    first = cached_float_model(onnx_model, tmp_path)
    written = first.stat().st_mtime_ns
    assert cached_float_model(onnx_model, tmp_path) == first
    assert first.stat().st_mtime_ns == written
    assert file_sha256(onnx_model)[:12] in first.name


def test_command_line(onnx_model, shared_dir, tmp_path, capsys):
    """`ros2 run facetrack_ros dequantize_yolo`: exit 0 with a summary, 1 with the reason."""
    assert dequantize_yolo.main([str(onnx_model), str(tmp_path / 'y.pt')]) == 0
    assert '63 of 127 tensors dequantized' in capsys.readouterr().out
    assert dequantize_yolo.main([str(shared_dir / 'models' / 'yunet_s_640_640.onnx'),
                                 str(tmp_path / 'n.pt')]) == 1
    assert 'not an ultralytics detection export' in capsys.readouterr().err
    assert not (tmp_path / 'n.pt').exists()
    source = tmp_path / 'm.onnx'
    source.write_bytes(onnx_model.read_bytes())
    assert dequantize_yolo.main([str(source), str(source)]) == 1
    assert 'is the source file' in capsys.readouterr().err
    assert source.read_bytes() == onnx_model.read_bytes()
