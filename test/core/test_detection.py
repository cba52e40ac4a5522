"""Person detectors on the shared test images and video, with the real YOLOv8n ONNX model."""

import logging
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Iterator

import cv2
import numpy as np
import pytest

from facetrack_ros.core.detection import (configure_ultralytics_offline, create_person_detector,
                                          detector_workers, FaceFirstPersonDetector,
                                          ModelUnavailableError, non_max_suppression,
                                          OnnxPersonDetector, person_class,
                                          runs_on_onnxruntime,
                                          PersonBox, PersonDetector, scale_boxes,
                                          yolo_boxes, YoloPersonDetector)
from facetrack_ros.core.face import FaceBox, FaceDetector
from facetrack_ros.core.tracking import TrackerConfig


@pytest.fixture(scope='module', autouse=True)
def network_attempts() -> Iterator[list[tuple]]:
    """Refuse, and record, every host lookup or connection made while this module runs."""
    attempts: list[tuple] = []

    def refuse(*args: object) -> None:
        attempts.append(args)
        raise OSError('network disabled in this test')  # what an offline machine would say

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, 'getaddrinfo', refuse)
        patch.setattr(socket.socket, 'connect', refuse)
        yield attempts


@pytest.fixture(autouse=True)
def no_network(network_attempts: list[tuple]) -> Iterator[None]:
    """Fail the test if it (or a fixture it set up) tried to reach the network."""
    yield
    assert not network_attempts, f'network access attempted: {network_attempts}'


@pytest.fixture(scope='module')
def model_path(shared_dir: Path) -> str:
    """Return the YOLOv8n COCO int8 ONNX model (class 0 is person)."""
    return str(shared_dir / 'models' / 'yolov8n_int8.onnx')


#: The detector keeps boxes from this score for the tests below: ByteTrack's share.
TRACKED = TrackerConfig().track_low_thresh


@pytest.fixture(scope='module')
def yolo(model_path: str) -> Iterator[YoloPersonDetector]:
    """Load the YOLO person detector once for the module, keeping the boxes ByteTrack takes.

    The detector's default keeps fainter boxes too (DEFAULT_CONFIDENCE), for the tracker's
    rule for someone standing still (test_tracking); these tests judge the boxes people get
    tracks from.
    """
    detector = YoloPersonDetector(model_path, device='cpu', confidence=TRACKED)
    yield detector
    detector.close()


@pytest.fixture(scope='module')
def two_people(shared_dir: Path) -> np.ndarray:
    """Return a photo of two people side by side, faces and upper bodies visible."""
    image = cv2.imread(str(shared_dir / 'data' / 'faces' / 'two_people.jpg'))
    assert image is not None
    return image


def _frames(path: Path, count: int, step: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    for i in range(count * step):
        ok, frame = capture.read()
        assert ok, f'{path} ended at frame {i}'
        if i % step == 0:
            frames.append(frame)
    capture.release()
    return frames


def _assert_sane(people: list[PersonBox], image: np.ndarray, min_height: float) -> None:
    height, width = image.shape[:2]
    for person in people:
        x1, y1, x2, y2 = person.box
        assert person.box.shape == (4,) and person.box.dtype == np.float32
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert y2 - y1 >= min_height and y2 - y1 > 0.8 * (x2 - x1)  # people are tall
        assert TRACKED <= person.confidence <= 1


def test_yolo_finds_pedestrians(yolo: YoloPersonDetector, shared_dir: Path) -> None:
    """Several upright people per frame of the pedestrian video."""
    frames = _frames(shared_dir / 'data' / 'video' / 'pedestrians_vtest.avi', 4, 50)
    for frame in frames:
        people = yolo.detect(frame)
        assert len(people) >= 3
        _assert_sane(people, frame, min_height=12)  # far-off walkers are small


def test_yolo_finds_two_people(yolo: YoloPersonDetector, two_people: np.ndarray) -> None:
    """One box per person, one on each half of the photo."""
    people = yolo.detect(two_people)
    assert len(people) == 2
    _assert_sane(people, two_people, min_height=0.5 * two_people.shape[0])
    centres = sorted((p.box[0] + p.box[2]) / 2 for p in people)
    assert centres[0] < two_people.shape[1] / 2 < centres[1]


def test_yolo_rejects_bad_images(yolo: YoloPersonDetector) -> None:
    """Wrong dtype, channel count or an empty array raise ValueError."""
    for bad in (np.zeros((64, 64, 3), np.float32), np.zeros((64, 64), np.uint8),
                np.zeros((64, 64, 4), np.uint8), np.zeros((0, 64, 3), np.uint8), None):
        with pytest.raises(ValueError, match='HxWx3|uint8|numpy array'):
            yolo.detect(bad)


def test_closed_detector_refuses(model_path: str, two_people: np.ndarray) -> None:
    """detect() after close() raises instead of crashing inside ultralytics."""
    detector = YoloPersonDetector(model_path)
    detector.close()
    with pytest.raises(RuntimeError, match='closed'):
        detector.detect(two_people)


def test_bare_model_name_is_refused_offline() -> None:
    """A name ultralytics would download fails fast, naming the parameter to set."""
    configure_ultralytics_offline()
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match='`model`'):
        YoloPersonDetector('yolo11n.pt', allow_download=False)
    assert time.monotonic() - start < 2.0
    assert not Path('yolo11n.pt').exists()


def test_offline_switches_are_set() -> None:
    """Ultralytics sees itself offline and will not pip-install or report anything."""
    configure_ultralytics_offline()
    from ultralytics import utils
    from ultralytics.utils import checks, events
    assert not utils.ONLINE and not checks.ONLINE and not checks.AUTOINSTALL
    assert not events.events.enabled and not utils.SETTINGS['sync']


@pytest.mark.parametrize('detector', [YoloPersonDetector, OnnxPersonDetector])
def test_unloadable_model_is_unavailable(tmp_path: Path, detector: type) -> None:
    """A file that is not a model raises ModelUnavailableError, not a library error."""
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a model')
    with pytest.raises(ModelUnavailableError, match='`model`'):
        detector(str(junk))


def _factory() -> FaceDetector:
    return FaceDetector(backend='hog')


def test_required_missing_model_raises(tmp_path: Path) -> None:
    """require_model turns a missing model into an error that names the parameter."""
    with pytest.raises(ModelUnavailableError, match='`model`'):
        create_person_detector(str(tmp_path / 'missing.onnx'), 'cpu', 0.35, 640, False,
                               require_model=True, face_detector_factory=_factory)


def test_factory_loads_yolo(model_path: str) -> None:
    """An existing model gives a YOLO detector and says which runtime runs it.

    ONNX Runtime for an .onnx file on the CPU; ultralytics for another device.
    """
    detector, status = create_person_detector(model_path, 'cpu', 0.35, 640, False,
                                              require_model=True, face_detector_factory=_factory)
    assert isinstance(detector, OnnxPersonDetector)
    assert status == f'yolo model {model_path} on cpu (ONNX Runtime)'
    detector.close()
    assert not runs_on_onnxruntime(model_path, 'cuda')


def test_face_first_fallback_finds_two_people(tmp_path: Path, two_people: np.ndarray) -> None:
    """Without a model the factory falls back to faces and still finds both people."""
    detector, status = create_person_detector(str(tmp_path / 'missing.onnx'), 'cpu', 0.35, 640,
                                              False, require_model=False,
                                              face_detector_factory=_factory)
    assert isinstance(detector, FaceFirstPersonDetector)
    assert status.startswith('no person model (') and status.endswith('face-first fallback')
    people = detector.detect(two_people)
    assert len(people) == 2
    height, width = two_people.shape[:2]
    for person in people:
        x1, y1, x2, y2 = person.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert y2 - y1 > x2 - x1 and 0 <= person.confidence <= 1
    centres = sorted((p.box[0] + p.box[2]) / 2 for p in people)
    assert centres[0] < width / 2 < centres[1]
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), np.uint8))


class _FixedFaces:
    """Stands in for FaceDetector, returning set face boxes."""

    def __init__(self, *faces: tuple[list[float], float]) -> None:
        self.faces = [FaceBox(box=np.array(box, np.float32), score=score) for box, score in faces]

    def detect(self, image_bgr: np.ndarray, roi: object = None) -> list:
        return self.faces


def test_face_first_geometry() -> None:
    """The body box is 3 faces wide and 7 tall from the forehead, clipped to the image."""
    faces = _FixedFaces(([100, 50, 120, 70], 0.9), ([2, 10, 22, 30], 2.5))
    detector: PersonDetector = FaceFirstPersonDetector(faces)
    people = detector.detect(np.zeros((120, 200, 3), np.uint8))
    np.testing.assert_allclose(people[0].box, [80, 40, 140, 120])
    assert people[0].confidence == pytest.approx(0.9)
    np.testing.assert_allclose(people[1].box, [0, 0, 42, 120])
    assert people[1].confidence == 1.0


def test_scale_boxes_to_the_full_frame() -> None:
    """Boxes of a 640x360 copy come back in the 1920x1080 frame's pixels, scores kept."""
    boxes = [PersonBox(np.array([10, 20, 110, 300], np.float32), 0.9),
             PersonBox(np.array([0, 0, 640, 360], np.float32), 0.4)]
    scaled = scale_boxes(boxes, (640, 360), (1920, 1080))
    assert np.allclose(scaled[0].box, [30, 60, 330, 900])
    assert np.allclose(scaled[1].box, [0, 0, 1920, 1080])
    assert [b.confidence for b in scaled] == [0.9, 0.4]
    assert all(b.box.dtype == np.float32 for b in scaled)
    assert scale_boxes(boxes, (640, 360), (640, 360)) == boxes


def test_workers_default_to_two_on_a_cpu_and_one_otherwise() -> None:
    """Workers 0: two single-threaded inferences side by side on a CPU; a GPU takes one."""
    two = 2 if len(os.sched_getaffinity(0)) >= 2 else 1
    assert detector_workers(0, 'yolov8n.pt', 'cpu') == two
    assert detector_workers(0, '/models/yolov8n.onnx', 'cpu') == two
    assert detector_workers(0, 'yolov8n.onnx', 'cuda') == 1
    assert detector_workers(0, 'yolov8n.engine', 'cuda:0') == 1
    assert detector_workers(0, 'yolov8n.pt', 'cuda') == 1
    assert detector_workers(3, 'yolov8n.onnx', 'cpu') == 3


@pytest.mark.parametrize('video', ['pedestrians_vtest.avi', 'hamilton_clip.mp4'])
def test_onnx_runtime_detector_gives_ultralytics_boxes(model_path: str, shared_dir: Path,
                                                       video: str) -> None:
    """The ONNX file run by ONNX Runtime here and by ultralytics: the same people, same boxes.

    Also on a crop (padded otherwise than the frame) and a copy upscaled to 1080p.
    """
    ours = OnnxPersonDetector(model_path, threads=1)
    theirs = YoloPersonDetector(model_path)
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / video))
    found = 0
    for index in range(0, 60, 15):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok
        for image in (frame, frame[:, :300], cv2.resize(frame, (1920, 1080))):
            a, b = ours.detect(image), theirs.detect(image)
            assert len(a) == len(b), (len(a), len(b))
            for mine, other in zip(a, b):
                assert np.allclose(mine.box, other.box, atol=0.5), (mine.box, other.box)
                assert abs(mine.confidence - other.confidence) < 1e-3
            found += len(a)
    assert found >= 20
    assert ours.name == 'onnxruntime yolov8n_int8.onnx'
    ours.close()
    with pytest.raises(RuntimeError, match='closed'):
        ours.detect(frame)


def test_an_output_already_suppressed_is_kept_as_it_is() -> None:
    """Rows of 6 (an export with its own suppression) are boxes, whatever the metadata says.

    And two empty boxes do not suppress each other (0 / 0 is no overlap), as in torchvision.
    """
    rows = np.array([[100, 100, 200, 400, 0.9, 0], [300, 50, 380, 300, 0.8, 0],
                     [10, 10, 20, 20, 0.7, 2], [0, 0, 5, 5, 0.05, 0]], np.float32)
    boxes, scores = yolo_boxes(rows, 0.1, np.array([0]))
    np.testing.assert_array_equal(boxes, rows[:2, :4])
    np.testing.assert_array_equal(scores, rows[:2, 4])
    empty = np.array([[5, 5, 5, 9], [5, 5, 5, 9], [0, 0, 10, 10]], np.float32)
    assert list(non_max_suppression(empty, np.array([0.9, 0.8, 0.7], np.float32), 0.7)) == [
        0, 1, 2]


def test_onnx_runtime_detector_needs_neither_ultralytics_nor_torch(model_path: str,
                                                                   tmp_path: Path) -> None:
    """An ONNX model on the CPU loads and detects without them (torch: 0.5 GiB resident)."""
    code = ('import sys; import numpy as np; '
            'from facetrack_ros.core.detection import create_person_detector; '
            f'detector, _ = create_person_detector({model_path!r}, "cpu", 0.1, 640, False, True, '
            'None); detector.detect(np.zeros((360, 640, 3), np.uint8)); '
            'print(sorted({"torch", "ultralytics"} & set(sys.modules)))')
    # Run away from the repository, whose source folder lacks the built message modules.
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]', result.stdout


def test_onnx_runtime_detector_refuses_other_onnx_files(shared_dir: Path) -> None:
    """A face model is no person detector: a clear error naming the parameter."""
    with pytest.raises(ModelUnavailableError, match='`model`.*not an ultralytics detection'):
        OnnxPersonDetector(str(shared_dir / 'models' / 'yunet_s_640_640.onnx'))


def test_the_person_class_is_the_one_the_model_names_so(caplog) -> None:
    """Person is class 0 in COCO; a model of other classes first names its own person class.

    As ultralytics gives names (a dict), or as an ONNX export keeps them (its text); a model
    naming no person class is warned about and class 0 taken.
    """
    assert person_class({0: 'person', 1: 'bicycle'}, 'coco.pt') == 0
    assert person_class({0: 'car', 1: 'truck', 2: 'Person'}, 'site.pt') == 2
    assert person_class("{0: 'forklift', 1: 'person'}", 'site.onnx') == 1
    assert person_class(None, 'old.onnx') == 0 and person_class('{broken', 'x.onnx') == 0
    # At the module's own logger: launch's pytest plugins stop propagation to the root's.
    logger = logging.getLogger('facetrack_ros.core.detection')
    logger.addHandler(caplog.handler)
    try:
        assert person_class({0: 'car', 1: 'truck'}, 'cars.pt') == 0
    finally:
        logger.removeHandler(caplog.handler)
    assert "cars.pt names no class person (its class 0 is 'car')" in caplog.text
