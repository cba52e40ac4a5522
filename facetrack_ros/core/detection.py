"""Person detection: a YOLO model (by ultralytics or ONNX Runtime), or people found by face."""

import abc
import ast
from collections.abc import Mapping
from dataclasses import dataclass
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from facetrack_ros.core.face import check_image, FaceDetector

_LOG = logging.getLogger(__name__)

#: Hue, saturation and value bins of each part of body_appearance.
APPEARANCE_BINS = (8, 3, 3)
#: Parts of a person box body_appearance describes, as (top, bottom) fractions of its height:
#: the torso and the legs (the head and feet carry little colour and much background).
APPEARANCE_PARTS = ((0.2, 0.55), (0.55, 0.9))
#: Fraction of the box width kept around its centre line: the sides are mostly background.
APPEARANCE_WIDTH = 0.6
#: Each part is resampled to this size (width, height) [px] first, so the cost is fixed.
APPEARANCE_PATCH = (16, 24)


class ModelUnavailableError(RuntimeError):
    """The person model cannot be used: missing file, download refused, or it failed to load."""


@dataclass(frozen=True)
class PersonBox:
    """One detected person.

    box: (4,) float32 x1, y1, x2, y2 [px] in the input image.
    confidence: detector score in [0, 1].
    """

    box: np.ndarray
    confidence: float


def body_appearance(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Return a unit colour descriptor of a person box, or None for a box with no pixels.

    Per part (APPEARANCE_PARTS: torso, legs), an HSV histogram (APPEARANCE_BINS) of the
    central APPEARANCE_WIDTH of the box, normalised to sum 1; the parts' square roots are
    concatenated and scaled to unit length, so the dot product of two descriptors is the mean
    Bhattacharyya coefficient of their parts (1 for identical colours, 0 for disjoint ones).
    Clothes colours keep a track through a crossing; they are no identity (many people dress
    alike), so the tracker never names anyone from them.
    """
    height, width = image_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    centre, half = (x1 + x2) / 2, (x2 - x1) * APPEARANCE_WIDTH / 2
    parts = []
    for top, bottom in APPEARANCE_PARTS:
        rows = (int(np.clip(y1 + top * (y2 - y1), 0, height)),
                int(np.clip(y1 + bottom * (y2 - y1), 0, height)))
        cols = (int(np.clip(centre - half, 0, width)), int(np.clip(centre + half, 0, width)))
        if rows[1] - rows[0] < 1 or cols[1] - cols[0] < 1:
            return None
        patch = cv2.resize(image_bgr[rows[0]:rows[1], cols[0]:cols[1]], APPEARANCE_PATCH,
                           interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
        histogram = cv2.calcHist([hsv], [0, 1, 2], None, list(APPEARANCE_BINS),
                                 [0, 180, 0, 256, 0, 256]).reshape(-1)
        parts.append(np.sqrt(histogram / histogram.sum()))
    descriptor = np.concatenate(parts).astype(np.float32)
    return descriptor / np.linalg.norm(descriptor)


def scale_boxes(boxes: Sequence[PersonBox], from_size: tuple[int, int],
                to_size: tuple[int, int]) -> list[PersonBox]:
    """Return boxes found in an image of from_size (width, height) in to_size's pixels.

    For detections on a reduced copy of a frame, given back in the full frame's coordinates.
    """
    factors = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]] * 2, np.float32)
    if np.all(factors == 1.0):
        return list(boxes)
    return [PersonBox(box=(b.box * factors).astype(np.float32), confidence=b.confidence)
            for b in boxes]


class PersonDetector(abc.ABC):
    """Finds people in a BGR image."""

    #: Short label of the detector, for logs and diagnostics.
    name: str

    @abc.abstractmethod
    def detect(self, image_bgr: np.ndarray) -> list[PersonBox]:
        """Return the people in image_bgr (HxWx3 uint8).

        Raise ValueError (face.FaceInputError) for any other image.
        """

    def close(self) -> None:
        """Release what the detector holds; it must not be used afterwards."""


def passive_thread_waits() -> None:
    """Make idle OpenMP threads sleep rather than spin, unless OMP_WAIT_POLICY says otherwise.

    Read once, when torch loads its OpenMP runtime: call this before torch is imported. On a
    robot's few cores shared with other nodes, spinning inference threads take the CPU that
    the thread they wait for needs (YOLOv8n float, two torch threads on two cores at load 4.5:
    573 ms a frame spinning, 76 ms passive; one thread: 78 ms either way).
    """
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


def configure_ultralytics_offline() -> None:
    """Keep ultralytics off the network: no pip installs, update checks, telemetry or sync.

    Weight downloads are not covered here: YoloPersonDetector refuses a missing model file itself.
    """
    # Read when ultralytics is first imported, so they must be in place before that import.
    # YOLO_OFFLINE makes is_online() false: no DNS probe at import, no PyPI update check,
    # no analytics events or Sentry reports.
    os.environ['YOLO_OFFLINE'] = '1'
    # Missing requirements (e.g. the 'onnx' package for ONNX models) are logged, not pip-installed.
    os.environ['YOLO_AUTOINSTALL'] = '0'
    from ultralytics import utils
    from ultralytics.utils import checks, events
    # The module-level copies taken by an import that happened before this call.
    utils.ONLINE = checks.ONLINE = events.ONLINE = False
    utils.AUTOINSTALL = checks.AUTOINSTALL = False
    events.events.enabled = False
    if utils.SETTINGS['sync']:
        utils.SETTINGS.update(sync=False)  # persistent opt-out, as `yolo settings sync=False`


#: Smallest person score a detector reports, and its inference size (longest side) [px]:
#: the detector node's defaults too. The score is low, as ultralytics' own track mode sets
#: it: the tracker's ByteTrack takes boxes above its track_low_thresh, and the fainter ones
#: show that someone standing still, whom a passer-by's nearness made faint, is still there.
DEFAULT_CONFIDENCE = 0.1
DEFAULT_IMAGE_SIZE = 640
#: IoU above which non-maximum suppression keeps only the stronger of two boxes: ultralytics'
#: default for prediction, which YoloPersonDetector uses.
NMS_IOU = 0.7


def runs_on_onnxruntime(model: str, device: str) -> bool:
    """Return whether create_person_detector runs model with OnnxPersonDetector (ONNX, CPU)."""
    return Path(model).suffix == '.onnx' and device == 'cpu'


def detector_workers(workers: int, model: str, device: str) -> int:
    """Return how many images the detector infers at once: workers, or (0) the model's best.

    0 chooses two on a CPU of two or more cores for a torch model (.pt) or an ONNX file, where
    two single-threaded inferences side by side detect more frames a second than two threads
    on one image, which wait on each other at every layer (float YOLOv8n on 2 cores: 42
    frames/s against 16-26 with torch, 59 against 39 with ONNX Runtime); one otherwise: a GPU
    or a TensorRT engine takes one image at a time.
    """
    if workers:
        return workers
    on_cpu = Path(model).suffix == '.pt' and device == 'cpu' or runs_on_onnxruntime(model, device)
    return 2 if on_cpu and len(os.sched_getaffinity(0)) >= 2 else 1


class ModelPersonDetector(PersonDetector):
    """A detector around a loaded person model: _predict runs it, close() drops it."""

    _model: Any = None

    @abc.abstractmethod
    def _predict(self, image_bgr: np.ndarray) -> list[PersonBox]:
        """Return the people the model finds in a checked image."""

    def detect(self, image_bgr: np.ndarray) -> list[PersonBox]:
        """Return the detections of the configured classes above the confidence threshold."""
        check_image(image_bgr)
        if self._model is None:
            raise RuntimeError(f'{self.name} detector is closed')
        return self._predict(image_bgr)

    def close(self) -> None:
        """Drop the model so its memory (and GPU context) can be freed."""
        self._model = None


def person_class(names: Mapping[int, str] | str | None, model: str) -> int:
    """Return the id of the model's class named person: 0 (COCO's) when it names none.

    names: the model's class names (ultralytics' `names`; an ONNX export keeps them as the
    text of that dict in its metadata). A model whose class 0 is something else would report
    cars as persons; one that names no person class is warned about.
    """
    if isinstance(names, str):
        try:
            names = ast.literal_eval(names)
        except (ValueError, SyntaxError):
            names = None
    if not isinstance(names, Mapping) or not names:
        return 0
    for index, name in names.items():
        if str(name).lower() == 'person':
            return int(index)
    _LOG.warning('person model %s names no class person (its class 0 is %r): class 0 is '
                 'taken for persons', model, names.get(0))
    return 0


class YoloPersonDetector(ModelPersonDetector):
    """A YOLO detection model (.pt, .onnx, TensorRT .engine, ...) loaded by ultralytics."""

    def __init__(self, model: str, device: str = 'cpu', confidence: float = DEFAULT_CONFIDENCE,
                 image_size: int = DEFAULT_IMAGE_SIZE, half: bool = False,
                 allow_download: bool = False, threads: int = 0) -> None:
        """Load the model and run it once, so the first real frame is not slow.

        model is a path, or (only with allow_download) a name ultralytics fetches, such as
        'yolo11n.pt'. Boxes of its class named person are reported (person_class).
        threads is the number of CPU threads torch computes with (0: every CPU this process
        may use); it sets torch's process-wide count. Raise ModelUnavailableError if the model
        is missing or fails to load on device.
        """
        passive_thread_waits()
        configure_ultralytics_offline()
        path = Path(model).expanduser()
        if not allow_download and not (model and path.exists()):
            raise ModelUnavailableError(
                f'person model {model!r} not found and downloads are disabled; set the `model` '
                'parameter to an existing .pt, .onnx or .engine file')
        from ultralytics import YOLO
        self.name = f'yolo {path.name}'
        try:
            self._model = YOLO(str(path), task='detect')
            self._options: dict[str, Any] = dict(
                device=device, conf=confidence, imgsz=image_size,
                quantize=16 if half else None, verbose=False)  # quantize=16: the old half
            self._predict(np.zeros((image_size, image_size, 3), np.uint8))
            # After a prediction: the names of a .onnx or .engine come with its backend.
            self._options['classes'] = [person_class(self._model.names, model)]
            # Only now: the first prediction selects the device, and ultralytics then sets
            # torch to cores - 1 threads (training's choice), half the CPU on a 2-core robot.
            import torch
            torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        except Exception as error:  # any load failure means the same to the caller: no model
            raise ModelUnavailableError(
                f'person model {model!r} (parameter `model`) cannot run on {device!r}: '
                f'{error}') from error

    def _predict(self, image_bgr: np.ndarray) -> list[PersonBox]:
        result = self._model.predict(image_bgr, **self._options)[0]
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = result.boxes.conf.cpu().numpy()
        return [PersonBox(box=box, confidence=float(score)) for box, score in zip(boxes, scores)]


class OnnxPersonDetector(ModelPersonDetector):
    """A YOLO detection model exported by ultralytics as ONNX, run by ONNX Runtime on the CPU.

    ultralytics runs such a file too, but leaves ONNX Runtime its defaults: a thread a core,
    spinning while it waits for the others, so two models side by side oversubscribe the cores
    (float YOLOv8n on 2 cores: 32 frames/s as two images at once, 42 one at a time, and the
    detector took 158-162 % of a core for 26-27 frames a second in the graph). Here each model
    computes on threads of its own that sleep while they wait: two single-threaded ones detect
    59 frames/s. Before and after inference it takes ultralytics' steps (letterbox, then
    non-maximum suppression and scaling back), on numpy: the boxes are those
    YoloPersonDetector gives, and the process needs neither ultralytics nor torch (about
    0.5 GiB resident).
    """

    def __init__(self, model: str, confidence: float = DEFAULT_CONFIDENCE,
                 image_size: int = DEFAULT_IMAGE_SIZE, threads: int = 0) -> None:
        """Load the file and run it once, so the first real frame is not slow.

        threads: CPU threads of this model's inference (0: every CPU this process may use).
        image_size: of a model with a dynamic input size; rounded up to a multiple of its
        stride, as ultralytics rounds it (a model with a fixed size takes only that).
        Raise ModelUnavailableError if the file is missing, is not an ultralytics detection
        export, or fails to run.
        """
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(
                f'person model {model!r} not found; set the `model` parameter to an existing '
                '.pt, .onnx or .engine file')
        from facetrack_ros.core.onnx_cpu import cpu_session
        self.name = f'onnxruntime {path.name}'
        self._confidence = confidence
        try:
            self._model = cpu_session(path, threads or len(os.sched_getaffinity(0)))
            metadata = self._model.get_modelmeta().custom_metadata_map
            if metadata.get('task') != 'detect' or 'stride' not in metadata:
                raise ValueError('not an ultralytics detection export (no task and stride '
                                 'in its metadata)')
            self._end2end = metadata.get('end2end') == 'True'
            self._classes = np.asarray([person_class(metadata.get('names'), model)])
            inputs = self._model.get_inputs()[0]
            fixed = all(isinstance(side, int) for side in inputs.shape[2:])
            # A fixed input size is padded to in full; a dynamic one only to the stride.
            self._stride = None if fixed else int(metadata['stride'])
            if not fixed and image_size % self._stride:
                rounded = -(-image_size // self._stride) * self._stride
                _LOG.warning('image_size %d is not a multiple of the model\'s stride %d: '
                             'using %d', image_size, self._stride, rounded)
                image_size = rounded
            self._input_size = (tuple(inputs.shape[2:]) if fixed else (image_size, image_size))
            self._input = inputs.name
            self._predict(np.zeros((image_size, image_size, 3), np.uint8))
        except Exception as error:  # any load failure means the same to the caller: no model
            raise ModelUnavailableError(
                f'person model {model!r} (parameter `model`) cannot run on ONNX Runtime: '
                f'{error}') from error

    def _predict(self, image_bgr: np.ndarray) -> list[PersonBox]:
        padded = letterbox(image_bgr, self._input_size, self._stride)
        blob = np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1))[None]
        output = self._model.run(None, {self._input: blob.astype(np.float32) / 255})[0][0]
        boxes, scores = yolo_boxes(output, self._confidence, self._classes, self._end2end)
        boxes = unletterbox(boxes, padded.shape[:2], image_bgr.shape[:2])
        return [PersonBox(box=box, confidence=float(score)) for box, score in zip(boxes, scores)]


#: The most boxes kept per image, and the most candidates suppression sorts: ultralytics'.
MAX_DETECTIONS = 300
MAX_NMS_CANDIDATES = 30000
#: Offset per class that keeps suppression within a class (ultralytics' max_wh) [px].
CLASS_OFFSET_PX = 7680
#: Grey of the letterbox padding, as ultralytics pads.
LETTERBOX_GREY = 114


def letterbox(image: np.ndarray, size: tuple[int, int], stride: int | None) -> np.ndarray:
    """Return image scaled to fit size (height, width) and padded, as ultralytics' LetterBox.

    Bilinear, centred, grey padding; stride: pad only up to the next multiple of it (a model
    with a dynamic input size), None: pad to size in full.
    """
    height, width = image.shape[:2]
    scale = min(size[0] / height, size[1] / width)
    new_width, new_height = max(round(width * scale), 1), max(round(height * scale), 1)
    pad_x, pad_y = size[1] - new_width, size[0] - new_height
    if stride is not None:
        pad_x, pad_y = np.mod(pad_x, stride), np.mod(pad_y, stride)
    pad_x, pad_y = pad_x / 2, pad_y / 2
    if (width, height) != (new_width, new_height):
        image = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(image, round(pad_y - 0.1), round(pad_y + 0.1),
                              round(pad_x - 0.1), round(pad_x + 0.1), cv2.BORDER_CONSTANT,
                              value=(LETTERBOX_GREY,) * 3)


def yolo_boxes(output: np.ndarray, confidence: float, classes: np.ndarray,
               end2end: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the boxes (N, 4) x1, y1, x2, y2 and scores (N,) of a YOLO output, best first.

    output: (4 + classes, anchors) centre x, centre y, width, height, then a score per class.
    Each anchor keeps its best class; those scoring above confidence in classes go through
    non-maximum suppression within their class, as ultralytics' non_max_suppression. An
    end-to-end model's output, or any of rows of 6 (an export with its own suppression, whose
    metadata need not say end2end), is (max_det, 6) x1, y1, x2, y2, score, class: kept as is.
    """
    if end2end or output.shape[-1] == 6:
        keep = (output[:, 4] > confidence) & np.isin(output[:, 5], classes)
        return output[keep][:MAX_DETECTIONS, :4], output[keep][:MAX_DETECTIONS, 4]
    anchors = output.T
    anchors = anchors[anchors[:, 4:].max(1) > confidence]
    best = anchors[:, 4:].argmax(1)
    scores = anchors[np.arange(len(anchors)), 4 + best]
    keep = (scores > confidence) & np.isin(best, classes)
    anchors, best, scores = anchors[keep], best[keep], scores[keep]
    xy, half = anchors[:, :2], anchors[:, 2:4] / 2
    boxes = np.concatenate([xy - half, xy + half], 1)
    if len(scores) > MAX_NMS_CANDIDATES:
        top = np.argsort(-scores, kind='stable')[:MAX_NMS_CANDIDATES]
        boxes, best, scores = boxes[top], best[top], scores[top]
    kept = non_max_suppression(boxes + (best * CLASS_OFFSET_PX)[:, None].astype(boxes.dtype),
                               scores, NMS_IOU)
    return boxes[kept], scores[kept]


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Return the indices of the boxes kept, best first (greedy, as torchvision.ops.nms).

    Each box kept drops the lower-scoring ones that overlap it by an IoU above iou; at most
    MAX_DETECTIONS are kept.
    """
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind='stable')
    kept = []
    while len(order) and len(kept) < MAX_DETECTIONS:
        first, rest = order[0], order[1:]
        kept.append(first)
        width = (np.minimum(boxes[first, 2], boxes[rest, 2])
                 - np.maximum(boxes[first, 0], boxes[rest, 0])).clip(0)
        height = (np.minimum(boxes[first, 3], boxes[rest, 3])
                  - np.maximum(boxes[first, 1], boxes[rest, 1])).clip(0)
        inter = width * height
        with np.errstate(invalid='ignore'):   # two empty boxes: 0 / 0 overlaps nothing
            order = rest[~(inter / (areas[first] + areas[rest] - inter) > iou)]
    return np.asarray(kept, dtype=np.int64)


def unletterbox(boxes: np.ndarray, padded: tuple[int, int], shape: tuple[int, int]
                ) -> np.ndarray:
    """Return boxes of the letterboxed image in the original image's pixels (float32).

    padded and shape are the (height, width) of the letterboxed and the original image; the
    boxes are clipped to the original, as ultralytics' scale_boxes does.
    """
    scale = min(padded[0] / shape[0], padded[1] / shape[1])
    new_height, new_width = (max(round(side * scale), 1) for side in shape)
    pad_x = round((padded[1] - new_width) / 2 - 0.1)
    pad_y = round((padded[0] - new_height) / 2 - 0.1)
    boxes = boxes.astype(np.float32)   # a copy
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - pad_x) / (new_width / shape[1])).clip(0, shape[1])
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pad_y) / (new_height / shape[0])).clip(0, shape[0])
    return boxes


class FaceFirstPersonDetector(PersonDetector):
    """Finds people from their faces over the whole frame, for when no person model is available.

    The person box is extrapolated from the face box with body proportions: width_factor face
    widths wide around the face centre, height_factor face heights tall starting head_margin
    face heights above the face box (the forehead and hair a face detector leaves out).
    """

    name = 'face-first'

    def __init__(self, face_detector: FaceDetector, width_factor: float = 3.0,
                 height_factor: float = 7.0, head_margin: float = 0.5) -> None:
        """Use face_detector (owned by the caller) with the given body proportions."""
        self._faces = face_detector
        self._width_factor = width_factor
        self._height_factor = height_factor
        self._head_margin = head_margin

    def detect(self, image_bgr: np.ndarray) -> list[PersonBox]:
        """Return one person box per face found, clipped to the image."""
        check_image(image_bgr)
        height, width = image_bgr.shape[:2]
        people = []
        for face in self._faces.detect(image_bgr):
            x1, y1, x2, y2 = (float(v) for v in face.box)
            face_w, face_h = x2 - x1, y2 - y1
            centre = (x1 + x2) / 2
            top = y1 - self._head_margin * face_h
            box = np.array([centre - self._width_factor * face_w / 2, top,
                            centre + self._width_factor * face_w / 2,
                            top + self._height_factor * face_h], np.float32)
            box = np.clip(box, 0, [width, height, width, height]).astype(np.float32)
            if box[2] > box[0] and box[3] > box[1]:
                # Face scores are not all probabilities (dlib HOG gives SVM margins).
                people.append(PersonBox(box=box, confidence=float(np.clip(face.score, 0, 1))))
        return people


def create_person_detector(model: str, device: str, confidence: float, image_size: int,
                           half: bool, require_model: bool,
                           face_detector_factory: Callable[[], FaceDetector],
                           allow_download: bool = False,
                           threads: int = 0) -> tuple[PersonDetector, str]:
    """Return the YOLO detector for model, or the face-first fallback, with a status line.

    Raise ModelUnavailableError (naming the `model` parameter) if require_model is set and
    the model cannot be used. A model missing on disk is downloaded only with allow_download.
    """
    try:
        detector = (OnnxPersonDetector(model, confidence, image_size, threads=threads)
                    if runs_on_onnxruntime(model, device) else
                    YoloPersonDetector(model, device, confidence, image_size, half,
                                       allow_download=allow_download, threads=threads))
    except ModelUnavailableError as error:
        if require_model:
            raise
        return (FaceFirstPersonDetector(face_detector_factory()),
                f'no person model ({error}): face-first fallback')
    runtime = 'ONNX Runtime' if isinstance(detector, OnnxPersonDetector) else 'ultralytics'
    return detector, f'yolo model {model} on {device} ({runtime})'
