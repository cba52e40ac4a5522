"""HistorySearch on real faces and files: queries, refusals, deep mode, thumbnails, locking."""

from pathlib import Path
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros.core.face import DlibResNetEmbedder, Face, FaceAnalyzer, FaceDetector
from facetrack_ros.core.history import (check_query, COMPRESSED_IMAGE_TYPE, EmbeddingIndex,
                                        FrameHistory, HistoryConfig, HistorySearch, IndexEntry,
                                        message_definition, QueryKind, SearchCode, SearchQuery,
                                        SearchRefused, SearchSettings, SerializedMessage)
from facetrack_ros.core.history.search import (MAX_DEEP_BUDGET_S, MAX_QUERY_IMAGE_SIDE_PX,
                                               MAX_STAMP_NS, MAX_WINDOW_S)
from face_frames import letterbox

T0 = 1_750_000_000 * 10 ** 9   # 2025-06-15, an arbitrary capture epoch [ns]
S = 10 ** 9
LIN, ALEX = 'lin-manuel-miranda', 'alex-lacamoire'
#: When each person is in view [s after T0]: Lin twice, Alex once.
VISITS = [(LIN, 0, 5), (ALEX, 20, 24), (LIN, 60, 63)]
#: A window covering every visit.
WINDOW = dict(center_ns=T0 + 30 * S, window_s=200.0)


@pytest.fixture(scope='module')
def analyzer() -> FaceAnalyzer:
    """Return the real face model (dlib HOG detector and ResNet descriptor)."""
    return FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())


@pytest.fixture(scope='module')
def photos(shared_dir: Path) -> dict[str, np.ndarray]:
    """Return the labelled photos by name (BGR)."""
    return {name: cv2.imread(str(shared_dir / 'data' / 'faces' / file)) for name, file in (
        (LIN, 'lin-manuel-miranda.png'), (ALEX, 'alex-lacamoire.png'), ('biden', 'biden.jpg'))}


@pytest.fixture(scope='module')
def people(photos: dict[str, np.ndarray],
           analyzer: FaceAnalyzer) -> dict[str, tuple[bytes, Face]]:
    """Return {person: (JPEG of a 640x360 camera frame, the face found in it)}."""
    out = {}
    for person in (LIN, ALEX):
        frame = letterbox(photos[person])
        face = analyzer.largest_face(frame)
        assert face is not None
        out[person] = (cv2.imencode('.jpg', frame)[1].tobytes(), face)
    return out


def frame_message(stamp_ns: int, jpeg: bytes, definition: str) -> SerializedMessage:
    """Return a CompressedImage of camera 'hall' stamped stamp_ns, serialized by rclpy."""
    message = CompressedImage(format='jpeg', data=jpeg)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, S)
    message.header.frame_id = 'hall_optical'
    return SerializedMessage('/hall/image_raw/compressed', COMPRESSED_IMAGE_TYPE, definition,
                             bytes(serialize_message(message)), stamp_ns)


def record(history: FrameHistory, people: dict[str, tuple[bytes, Face]],
           visits=VISITS, faces: bool = True, fps: int = 5) -> None:
    """Store frames of each visit at fps and, with faces, index the face in each frame."""
    definition = message_definition(COMPRESSED_IMAGE_TYPE, [Path(sys.prefix) / 'share'])
    for person, start, end in visits:
        jpeg, face = people[person]
        for k in range((end - start) * fps + 1):
            stamp = T0 + start * S + k * S // fps
            history.store.add_frame('hall', frame_message(stamp, jpeg, definition), jpeg,
                                    'hall_optical')
            if faces:
                history.index.add(IndexEntry(
                    stamp, 'r1', 'hall', person, tuple(float(v) for v in face.box),
                    face.quality, face.embedding, history.store.segment_for('hall', stamp)))


@pytest.fixture
def searcher(tmp_path: Path, people, analyzer: FaceAnalyzer) -> HistorySearch:
    """Return a search over a history of the three visits, frames and faces."""
    history = FrameHistory(tmp_path / 'history')
    record(history, people)
    yield HistorySearch(history, analyzer, SearchSettings(robot_id='r1', camera_id='hall'))
    history.close()


def spans(outcome) -> list[tuple[float, float]]:
    """Return the appearances' first and last sightings in s after T0, sorted."""
    return sorted((round((a.first_seen_ns - T0) / S, 1), round((a.last_seen_ns - T0) / S, 1))
                  for a in outcome.appearances)


def test_codes_and_kinds_are_the_service_constants() -> None:
    """The enums carry BacktrackSearch's numbers (checked against the .srv in the node tests)."""
    assert [int(code) for code in SearchCode] == list(range(7))
    assert [int(kind) for kind in QueryKind] == [0, 1, 2]


def test_search_by_person_embedding_and_photo(searcher: HistorySearch, people, photos) -> None:
    """All three kinds of query find the right intervals; the best hit is the real face."""
    by_id = searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN, **WINDOW))
    assert by_id.code == SearchCode.OK, by_id.message
    assert spans(by_id) == [(0.0, 5.0), (60.0, 63.0)]
    assert {a.person_id for a in by_id.appearances} == {LIN}
    assert by_id.entries_searched == 6 + 5 + 4   # one face per person per second
    assert by_id.appearances[0].best.similarity > 0.99
    assert 'person lin-manuel-miranda' in by_id.message and by_id.elapsed_s > 0
    np.testing.assert_allclose(np.linalg.norm(by_id.embedding), 1.0, rtol=1e-5)

    alex = people[ALEX][1].embedding
    by_embedding = searcher.search(SearchQuery(QueryKind.EMBEDDING, embedding=alex.tolist(),
                                               **WINDOW))
    assert [a.person_id for a in by_embedding.appearances] == [ALEX]
    assert spans(by_embedding) == [(20.0, 24.0)]

    by_photo = searcher.search(SearchQuery(QueryKind.IMAGE, image=photos[LIN], **WINDOW))
    assert by_photo.code == SearchCode.OK and {a.person_id for a in by_photo.appearances} == {
        LIN}
    stranger = searcher.search(SearchQuery(QueryKind.IMAGE, image=photos['biden'], **WINDOW))
    assert stranger.code == SearchCode.NO_MATCH and not stranger.appearances
    assert 'no appearance' in stranger.message and stranger.entries_searched == 15

    one = searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN, max_results=1,
                                      **WINDOW))
    assert len(one.appearances) == 1
    later = searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN,
                                        center_ns=T0 + 61 * S, window_s=10.0))
    assert spans(later) == [(60.0, 63.0)] and later.entries_searched == 4
    assert (later.searched_from_ns, later.searched_to_ns) == (T0 + 60 * S, T0 + 63 * S)
    everything = searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN, window_s=0.0))
    assert everything.entries_searched == 15
    # The window ending now (no centre) holds nothing of 2025.
    assert searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN)).code == \
        SearchCode.NO_HISTORY
    # Unless now is the caller's clock, as a node's under use_sim_time replaying 2025.
    replayed = searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN, window_s=10.0),
                               now_ns=T0 + 65 * S)
    assert spans(replayed) == [(60.0, 63.0)]
    # The robot's default threshold applies unless the query sets one.
    assert searcher.search(SearchQuery(QueryKind.IMAGE, image=photos['biden'],
                                       min_similarity=-1.0, **WINDOW)).code == SearchCode.OK
    strict = SearchSettings(robot_id='r1', min_similarity=0.9999)
    assert searcher.search(SearchQuery(QueryKind.EMBEDDING, embedding=alex * 0.5, **WINDOW),
                           strict).code == SearchCode.OK   # the very face, scaled
    assert searcher.search(SearchQuery(QueryKind.PERSON_ID, person_id=LIN, **WINDOW),
                           SearchSettings(appearance_gap_s=100.0)).appearances[0].sightings == 10


def test_refusals_have_their_codes(searcher: HistorySearch) -> None:
    """Unknown person, no face, nothing in the window: a code and a message, no appearances."""
    black = np.zeros((120, 160, 3), np.uint8)
    for code, query in (
            (SearchCode.UNKNOWN_PERSON, SearchQuery(person_id='nobody', **WINDOW)),
            (SearchCode.NO_FACE, SearchQuery(QueryKind.IMAGE, image=black, **WINDOW)),
            (SearchCode.NO_HISTORY, SearchQuery(person_id=LIN, center_ns=T0 + 1000 * S,
                                                window_s=10.0))):
        outcome = searcher.search(query)
        assert outcome.code == code, outcome.message
        assert outcome.message and not outcome.appearances
    no_model = HistorySearch(searcher.history)   # a search without a face model
    refused = no_model.search(SearchQuery(QueryKind.IMAGE, image=black, **WINDOW))
    assert refused.code == SearchCode.ERROR and 'face model' in refused.message


NAN, INF = float('nan'), float('inf')
GOOD = np.full(128, 0.1, np.float32)
INVALID = {   # a query per rule of check_query, and a word its message must hold
    'kind': (SearchQuery(kind=9), 'query_type'),
    'kind type': (SearchQuery(kind='1'), 'query_type'),
    'no person': (SearchQuery(person_id=''), 'person_id'),
    'long person': (SearchQuery(person_id='x' * 300), 'person_id'),
    'person type': (SearchQuery(person_id=7), 'person_id'),
    'short embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=[0.1] * 5), 'embedding'),
    'nan embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=[NAN] * 128), 'embedding'),
    'inf embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=[INF] * 128), 'embedding'),
    'huge embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=[1e38] * 128), 'embedding'),
    'beyond float32': (SearchQuery(QueryKind.EMBEDDING, embedding=[1e39] * 128), 'embedding'),
    'zero embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=[0.0] * 128), 'embedding'),
    'text embedding': (SearchQuery(QueryKind.EMBEDDING, embedding=['a'] * 128), 'embedding'),
    'no image': (SearchQuery(QueryKind.IMAGE), 'image'),
    'grey image': (SearchQuery(QueryKind.IMAGE, image=np.zeros((9, 9), np.uint8)), 'image'),
    'float image': (SearchQuery(QueryKind.IMAGE, image=np.zeros((9, 9, 3))), 'image'),
    'empty image': (SearchQuery(QueryKind.IMAGE, image=np.zeros((0, 9, 3), np.uint8)), 'image'),
    'window 1e12': (SearchQuery(person_id=LIN, window_s=1e12), 'window'),
    'window nan': (SearchQuery(person_id=LIN, window_s=NAN), 'window'),
    'window inf': (SearchQuery(person_id=LIN, window_s=INF), 'window'),
    'window negative': (SearchQuery(person_id=LIN, window_s=-1.0), 'window'),
    'centre negative': (SearchQuery(person_id=LIN, center_ns=-S), 'centre'),
    'centre overflow': (SearchQuery(person_id=LIN, center_ns=2 ** 63), 'centre'),
    'centre float': (SearchQuery(person_id=LIN, center_ns=1.5e18), 'centre'),
    'similarity 2': (SearchQuery(person_id=LIN, min_similarity=2.0), 'min_similarity'),
    'similarity nan': (SearchQuery(person_id=LIN, min_similarity=NAN), 'min_similarity'),
    'results negative': (SearchQuery(person_id=LIN, max_results=-1), 'max_results'),
    'results fraction': (SearchQuery(person_id=LIN, max_results=1.5), 'max_results'),
    'thumbnail narrow': (SearchQuery(person_id=LIN, thumbnail_width=8), 'thumbnail width'),
    'thumbnail wide': (SearchQuery(person_id=LIN, thumbnail_width=10 ** 6), 'thumbnail width'),
    'quality 0': (SearchQuery(person_id=LIN, thumbnail_quality=0), 'quality'),
    'quality 101': (SearchQuery(person_id=LIN, thumbnail_quality=101), 'quality'),
    'budget negative': (SearchQuery(person_id=LIN, thumbnail_budget_bytes=-1), 'budget'),
    'deep nan': (SearchQuery(person_id=LIN, deep=True, deep_budget_s=NAN), 'deep budget'),
    'deep long': (SearchQuery(person_id=LIN, deep_budget_s=1e9), 'deep budget'),
    'deep negative': (SearchQuery(person_id=LIN, deep_budget_s=-1.0), 'deep budget'),
    'deep zero': (SearchQuery(person_id=LIN, deep=True, deep_budget_s=0.0), 'deep budget'),
}


@pytest.mark.parametrize('name', INVALID)
def test_invalid_queries_are_refused_not_errors(searcher: HistorySearch, name: str) -> None:
    """Every malformed field, overflow included, is INVALID_REQUEST naming the field."""
    query, word = INVALID[name]
    with pytest.raises(SearchRefused) as refused:
        check_query(query, 128)
    assert refused.value.code == SearchCode.INVALID_REQUEST
    outcome = searcher.search(query)
    assert outcome.code == SearchCode.INVALID_REQUEST, outcome.message
    assert word in outcome.message.replace('center', 'centre'), outcome.message
    assert not outcome.appearances


def test_limits_at_their_bounds_are_accepted(searcher: HistorySearch) -> None:
    """The largest accepted values are searched; they do not overflow."""
    for code, query in (
            (SearchCode.NO_HISTORY, SearchQuery(person_id=LIN, window_s=MAX_WINDOW_S,
                                                center_ns=MAX_STAMP_NS)),
            (SearchCode.NO_HISTORY, SearchQuery(person_id=LIN, window_s=MAX_WINDOW_S,
                                                center_ns=0)),
            (SearchCode.OK, SearchQuery(QueryKind.EMBEDDING, embedding=GOOD * 1e15,
                                        window_s=0.0, max_results=2 ** 32 - 1,
                                        min_similarity=-1.0)),
            (SearchCode.OK, SearchQuery(person_id=LIN, deep_budget_s=MAX_DEEP_BUDGET_S,
                                        **WINDOW))):
        check_query(query, 128)
        assert searcher.search(query).code == code, query


def test_thumbnails_sized_and_within_budget(searcher: HistorySearch) -> None:
    """Thumbnails are the best frames, annotated, at the width and quality asked, in budget."""
    query = SearchQuery(person_id=LIN, thumbnails=True, **WINDOW)
    full = searcher.search(query)
    assert full.code == SearchCode.OK and len(full.appearances) == 2
    for appearance in full.appearances:
        thumbnail = appearance.thumbnail
        assert thumbnail.format == 'jpeg' and thumbnail.frame_id == 'hall_optical'
        assert thumbnail.stamp_ns == appearance.best.frame_stamp_ns
        image = cv2.imdecode(np.frombuffer(thumbnail.data, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (180, 320, 3)   # the 640x360 frame at width 320
    # What a fleet answer asks for: small thumbnails within a byte budget.
    small = searcher.search(SearchQuery(person_id=LIN, thumbnails=True, thumbnail_width=96,
                                        thumbnail_quality=50, **WINDOW))
    sizes = [len(a.thumbnail.data) for a in small.appearances]
    assert max(sizes) < min(len(a.thumbnail.data) for a in full.appearances)
    budget = searcher.search(SearchQuery(person_id=LIN, thumbnails=True, thumbnail_width=96,
                                         thumbnail_quality=50, thumbnail_budget_bytes=max(sizes),
                                         **WINDOW))
    kept = [a.thumbnail for a in budget.appearances if a.thumbnail is not None]
    assert len(kept) == 1 and len(kept[0].data) <= max(sizes)
    assert len(budget.appearances) == 2   # appearances beyond the budget stay, bare
    assert all(a.thumbnail is None for a in searcher.search(
        SearchQuery(person_id=LIN, **WINDOW)).appearances)
    found = searcher.best_frame(full.appearances[0])
    assert found is not None and found[1].shape == (360, 640, 3)


def test_faces_with_nan_box_or_quality_are_refused(searcher: HistorySearch, people) -> None:
    """A NaN box or quality never enters the index; searches with thumbnails keep working.

    Before, one NaN box broke every later search with thumbnails that touched it and a NaN
    quality blocked its bucket (no later face compares better than NaN).
    """
    jpeg, face = people[ALEX]
    stamp = T0 + 22 * S
    for box, quality in (((NAN,) * 4, 1.0), ((10.0, 20.0, 50.0, 80.0), NAN)):
        with pytest.raises(ValueError):
            searcher.history.index.add(IndexEntry(stamp, 'r1', 'hall', 'ghost', box, quality,
                                                  face.embedding * -1))
    assert searcher.history.index.add(IndexEntry(stamp, 'r1', 'hall', 'ghost',
                                                 (10.0, 20.0, 50.0, 80.0), 0.5,
                                                 face.embedding * -1))
    outcome = searcher.search(SearchQuery(person_id='ghost', thumbnails=True, **WINDOW))
    assert outcome.code == SearchCode.OK, outcome.message
    assert outcome.appearances[0].thumbnail is not None


def test_large_query_image_is_scaled_down(searcher: HistorySearch, photos) -> None:
    """A photo far larger than a camera frame is scaled down before detection and still found."""
    big = cv2.resize(photos[LIN], None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) > 2 * MAX_QUERY_IMAGE_SIDE_PX
    outcome = searcher.search(SearchQuery(QueryKind.IMAGE, image=big, **WINDOW))
    assert outcome.code == SearchCode.OK and outcome.appearances[0].person_id == LIN


def test_deep_search_embeds_frames_where_the_index_is_empty(tmp_path: Path, people,
                                                            analyzer: FaceAnalyzer) -> None:
    """Frames without faces indexed (tracker off): deep mode finds Lin in them, in budget."""
    history = FrameHistory(tmp_path)
    record(history, people, visits=[(LIN, 0, 2)], faces=False)
    search = HistorySearch(history, analyzer, SearchSettings(robot_id='r9', camera_id='hall'))
    query = dict(kind=QueryKind.EMBEDDING, embedding=people[LIN][1].embedding,
                 center_ns=T0 + S, window_s=10.0)
    shallow = search.search(SearchQuery(**query))
    assert shallow.code == SearchCode.NO_HISTORY and shallow.frames_searched == 0
    deep = search.search(SearchQuery(**query, deep=True, deep_budget_s=2.0, thumbnails=True))
    assert deep.code == SearchCode.OK, deep.message
    assert 1 <= deep.frames_searched <= 8 and 'deep' in deep.message   # 4 per budget second
    best = deep.appearances[0]
    assert best.robot_id == 'r9' and best.person_id == '' and best.best.similarity > 0.99
    assert T0 <= best.first_seen_ns <= best.last_seen_ns <= T0 + 2 * S
    assert best.thumbnail is not None
    stranger = search.search(SearchQuery(QueryKind.EMBEDDING, embedding=people[ALEX][1]
                                         .embedding, center_ns=T0 + S, window_s=10.0,
                                         deep=True, deep_budget_s=1.0))
    assert stranger.code == SearchCode.NO_MATCH and stranger.frames_searched >= 1
    history.close()


# --- recording goes on while a search runs ------------------------------------------------------

def _timed_while_busy(busy, write, writes: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Run busy() in a loop in a thread while timing write(i) calls here.

    Returns the durations of the busy() calls and of the writes made while one was running
    (start and end inside the same busy call) [s].
    """
    calls: list[tuple[float, float]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            busy()
            calls.append((began, time.perf_counter()))

    thread = threading.Thread(target=loop)
    thread.start()
    while not calls:   # the first call has ended: the next is running
        time.sleep(0.001)
    writes_done = []
    for i in range(writes):
        began = time.perf_counter()
        write(i)
        writes_done.append((began, time.perf_counter()))
        time.sleep(0.003)
    stop.set()
    thread.join()
    during = [end - began for began, end in writes_done
              if any(start <= began and end <= stop_ for start, stop_ in calls)]
    return np.array([end - began for began, end in calls]), np.array(during)


def test_index_add_goes_on_while_a_long_search_runs(tmp_path: Path) -> None:
    """add() takes a small fraction of a search's time while searches run back to back.

    Wide embeddings (2048 values) make each search read about 40 MB, long enough to measure
    beside, from a short build. Before, a search held the index lock throughout and every
    add() waited for it: about half a search on average.
    """
    dim, rng = 2048, np.random.default_rng(11)
    faces = rng.normal(size=(8, dim)).astype(np.float32)
    with EmbeddingIndex(tmp_path / 'index.sqlite3', dim=dim) as index:
        for second in range(2400):
            for person in range(2):
                index.add(IndexEntry(T0 + second * S + person, 'r1', 'hall', f'p{person}',
                                     (0.0, 0.0, 1.0, 1.0), 0.5, faces[person]))
        index.flush()
        searches, adds = _timed_while_busy(
            lambda: index.search(faces[0], max_results=0),
            lambda i: index.add(IndexEntry(T0 + (3000 + i) * S, 'r1', 'hall', 'p2',
                                           (0.0, 0.0, 1.0, 1.0), 0.5, faces[2])))
        assert len(adds) >= 20, f'{len(adds)} adds ran inside a search'
        search_s = float(np.median(searches))
        assert np.percentile(adds, 90) < 0.2 * search_s, (
            f'add p90 {1000 * np.percentile(adds, 90):.1f} ms, search {1000 * search_s:.0f} ms')
        assert index.entry_count(T0 + 3000 * S, T0 + 4000 * S) == 150   # every add was kept


def test_frame_store_writes_go_on_while_frames_are_read(tmp_path: Path, people) -> None:
    """add_frame() takes a small fraction of a long frame read (segments on disk) meanwhile."""
    definition = message_definition(COMPRESSED_IMAGE_TYPE, [Path(sys.prefix) / 'share'])
    jpeg = people[LIN][0]
    config = HistoryConfig(flush_interval_s=3600.0, segment_duration_s=10.0,
                           ring_bytes=len(jpeg) * 4)   # reads come from the segments
    with FrameHistory(tmp_path, config) as history:
        store = history.store
        for k in range(300):   # 30 s at 10 FPS: 3 finished segments
            store.add_frame('hall', frame_message(T0 + k * S // 10, jpeg, definition), jpeg)
        reads, writes = _timed_while_busy(
            lambda: store.frames_in_range(T0, T0 + 30 * S, limit=0, camera_id='hall'),
            lambda i: store.add_frame('hall', frame_message(T0 + 100 * S + i * S // 10, jpeg,
                                                            definition), jpeg))
        assert len(writes) >= 20, f'{len(writes)} writes ran inside a read'
        read_s = float(np.median(reads))
        assert np.percentile(writes, 90) < 0.2 * read_s, (
            f'add_frame p90 {1000 * np.percentile(writes, 90):.1f} ms, read {1000 * read_s:.0f}'
            ' ms')
        assert len(store.frames_in_range(T0 + 100 * S, T0 + 200 * S, limit=0)) == 150
        assert len(store.frames_in_range(T0, T0 + 30 * S, limit=0)) == 300
