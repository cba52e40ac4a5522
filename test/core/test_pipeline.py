"""PersonPipeline on frames as a camera delivers them: the node graph's steps in one loop."""

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from facetrack_ros.core.camera import Frame
from facetrack_ros.core.detection import YoloPersonDetector
from facetrack_ros.core.embedding_scheduler import EmbeddingScheduler
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.pipeline import PersonPipeline, STAGES
from facetrack_ros.core.tracking import PersonTracker, TrackerConfig

#: The camera node's image_detect size in the tests (its default).
DETECT_SIZE = 640


@pytest.fixture(scope='module')
def yolo(shared_dir: Path) -> Iterator[YoloPersonDetector]:
    """Load the shared YOLOv8n once for the module."""
    detector = YoloPersonDetector(str(shared_dir / 'models' / 'yolov8n_int8.onnx'))
    yield detector
    detector.close()


@pytest.fixture(scope='module')
def big_jpeg(shared_dir: Path) -> bytes:
    """Return two people side by side at 2.5 times the photo's size, as one Motion-JPEG frame."""
    image = cv2.imread(str(shared_dir / 'data' / 'faces' / 'two_people.jpg'))
    image = cv2.resize(image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)
    return cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Return the intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detects_on_the_reduced_copy_and_finds_faces_at_full_resolution(yolo, big_jpeg):
    """Boxes come back in the full frame's pixels; faces are embedded from the full frame.

    The detector reads the frame reduced to DETECT_SIZE, as it reads the camera's
    image_detect in the graph; its boxes match the detector's on the full frame.
    """
    full_image = cv2.imdecode(np.frombuffer(big_jpeg, np.uint8), cv2.IMREAD_COLOR)
    # The tracker makes tracks of the boxes above its track_low_thresh; fainter ones hold
    # only people it already knows.
    on_full = [box.box for box in yolo.detect(full_image)
               if box.confidence > TrackerConfig().track_low_thresh]
    assert len(on_full) >= 2
    pipeline = PersonPipeline(
        yolo, FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder()),
        PersonTracker(TrackerConfig()), EmbeddingScheduler(), detect_size=DETECT_SIZE,
        appearance=True)
    frame = Frame(0.0, 0, jpeg=big_jpeg)
    assert frame.reduced(DETECT_SIZE).shape[1] == DETECT_SIZE < frame.width
    out = pipeline.process(frame, frame.stamp)
    assert set(out.seconds) == set(STAGES)
    assert len(out.persons) == len(on_full)
    for person in out.persons:
        assert max(_iou(person.box, box) for box in on_full) > 0.85, person.box
    # Both new tracks are due a face at once; each is found inside its own full-size box.
    assert len(out.identified) == len(on_full)
    for sighting, _ in out.identified:
        face, box = sighting.face.box, sighting.person.box
        assert box[0] <= face[0] < face[2] <= box[2] and box[1] <= face[1] < face[3] <= box[3]
    assert max(sighting.face.box[2] for sighting, _ in out.identified) > DETECT_SIZE
