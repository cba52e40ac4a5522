"""The search of a frame history, without ROS: "when and where did this person appear?".

HistorySearch is the one search every caller shares: the frame_history node's BacktrackSearch
service and the fleet node answering other robots hand it a SearchQuery and turn the
SearchOutcome into their messages. A search runs in five steps:

1. check the query: every number finite and in range, or SearchCode.INVALID_REQUEST saying
   which field is wrong (check_query);
2. turn it into one face embedding (query_embedding): the mean of a person's best stored
   faces, the embedding given, or the largest face of an image;
3. search the index over the window (EmbeddingIndex.search: blocks of entries, one matrix
   product each, merged into appearances);
4. deep mode, where the index has nothing in the window: run the face model over stored
   frames sampled evenly over the window, within a time budget;
5. attach thumbnails when asked: the best frame of each appearance, boxed, scaled and
   JPEG-encoded, within a byte budget (a fleet answer must stay well under 64 KB).

Every failure is an outcome with a code and a readable message; search() never raises.
"""

from dataclasses import dataclass, field, replace
from enum import IntEnum
import logging
import math
from numbers import Integral, Real
import threading
import time
from typing import Sequence, TYPE_CHECKING

import cv2
import numpy as np

from facetrack_ros.core.annotate import draw_overlays, Overlay
from facetrack_ros.core.embedding import (cosine_similarity, DEFAULT_MIN_SIMILARITY,
                                          EmbeddingError, l2_normalize, validate_embedding)
from facetrack_ros.core.face import check_image, FaceAnalyzer, FaceInputError
from facetrack_ros.core.history.config import seconds_to_ns
from facetrack_ros.core.history.index import (Appearance, DEFAULT_APPEARANCE_GAP_S,
                                              group_appearances, Hit, PERSON_QUERY_FACES)
from facetrack_ros.core.history.ring import StoredFrame

if TYPE_CHECKING:   # the package imports this module
    from facetrack_ros.core.history import FrameHistory

_LOG = logging.getLogger(__name__)

#: Longest window a query may ask for (about 31 years); 0 asks for all history [s].
MAX_WINDOW_S = 1e9
#: Latest window centre accepted (year 2116): keeps every window bound within int64 [ns].
MAX_STAMP_NS = 2 ** 62
#: Longest person id a query may name [characters].
MAX_PERSON_ID_CHARS = 256
#: A query image is scaled down to this longest side before its face is detected [px]: the
#: HOG detector took 0.75 s at 960x720 and 1.2-1.4 s at 1280 px on this busy 2-core VM, and a
#: photo query must answer within 2 s; a face needs about 80 px after scaling.
MAX_QUERY_IMAGE_SIDE_PX = 960
#: Frames a deep search samples per second of its budget (a whole-frame face pass takes
#: roughly 0.25 s on a 2-core CPU), and the longest budget it accepts [s].
DEEP_FRAMES_PER_S = 4
MAX_DEEP_BUDGET_S = 120.0
#: Thumbnail width: default and accepted range [px]; JPEG quality default [1..100].
DEFAULT_THUMBNAIL_WIDTH_PX = 320
MIN_THUMBNAIL_WIDTH_PX = 32
MAX_THUMBNAIL_WIDTH_PX = 4096
DEFAULT_THUMBNAIL_QUALITY = 85
#: Most appearances of one outcome that get a thumbnail (each reads and encodes a frame).
MAX_THUMBNAILS = 100
#: How far from a face's stamp its frame may be [s].
FRAME_TOLERANCE_S = 0.5


class SearchCode(IntEnum):
    """What became of a search; the values are BacktrackSearch's RESULT_* constants."""

    OK = 0                 # appearances found
    NO_MATCH = 1           # searched, nothing at or above the threshold
    INVALID_REQUEST = 2    # malformed query; the message says which field
    UNKNOWN_PERSON = 3     # no stored face of the person id
    NO_FACE = 4            # no face in the query image
    NO_HISTORY = 5         # nothing stored in the window
    ERROR = 6              # internal failure; the message says what


class QueryKind(IntEnum):
    """What a query gives; the values are BacktrackSearch's QUERY_* constants."""

    PERSON_ID = 0
    EMBEDDING = 1
    IMAGE = 2


@dataclass(frozen=True)
class SearchQuery:
    """One question to the history; check_query says what a valid one is."""

    kind: int = QueryKind.PERSON_ID           # a QueryKind
    person_id: str = ''                       # PERSON_ID: whose stored faces to look for
    embedding: Sequence[float] | np.ndarray = field(default=(), repr=False)   # EMBEDDING
    image: np.ndarray | None = field(default=None, repr=False)   # IMAGE: HxWx3 uint8 BGR
    center_ns: int | None = None              # window centre [ns]; None: the window ends now
    window_s: float = 3600.0                  # full window width [s]; 0: all history
    min_similarity: float | None = None       # cosine [-1..1]; None: the searcher's default
    max_results: int = 10                     # most appearances; 0: all
    thumbnails: bool = False                  # attach the best frame of each appearance
    thumbnail_width: int = DEFAULT_THUMBNAIL_WIDTH_PX   # [px]
    thumbnail_quality: int = DEFAULT_THUMBNAIL_QUALITY  # JPEG quality [1..100]
    thumbnail_budget_bytes: int = 0           # most JPEG bytes of all thumbnails; 0: no limit
    deep: bool = False                        # embed stored frames where the index is empty
    deep_budget_s: float = 10.0               # time budget of deep mode [s]


@dataclass(frozen=True)
class SearchSettings:
    """What one robot's searches default to and how they label what they find."""

    robot_id: str = 'robot'                   # deep-mode hits are this robot's
    camera_id: str = ''                       # deep mode samples this camera; '' every one
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    appearance_gap_s: float = DEFAULT_APPEARANCE_GAP_S


@dataclass(frozen=True)
class SearchOutcome:
    """The answer to a SearchQuery: a code, a readable message and what was found."""

    code: SearchCode
    message: str
    #: Best similarity first; each with its thumbnail when asked for and one could be made.
    appearances: list[Appearance] = field(default_factory=list)
    #: The unit face embedding searched for; None when the query was refused before.
    embedding: np.ndarray | None = field(default=None, repr=False)
    entries_searched: int = 0    # index entries compared
    frames_searched: int = 0     # stored frames run through the face model (deep mode)
    searched_from_ns: int = 0    # the window searched, clipped to the entries in it [ns]
    searched_to_ns: int = 0
    elapsed_s: float = 0.0       # time spent answering [s]


class SearchRefused(Exception):
    """A query that cannot be answered with appearances: its code and the reason."""

    def __init__(self, code: SearchCode, message: str) -> None:
        """Keep the code beside the message."""
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> SearchRefused:
    return SearchRefused(SearchCode.INVALID_REQUEST, message)


def _check_number(name: str, value: object, low: float, high: float,
                  integer: bool = False) -> None:
    """Raise SearchRefused unless value is a finite number (an integer if asked) in range."""
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _invalid(f'{name} must be {"an integer" if integer else "a number"}, '
                       f'got {value!r}')
    if not (math.isfinite(value) and low <= value <= high):
        raise _invalid(f'{name} {value} is outside [{low:g}, {high:g}]')


def check_embedding(values: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    """Return values as a unit float32 embedding, or raise SearchRefused saying why.

    Besides validate_embedding's checks (length, finite values, not zero) the values must be
    small enough to normalise in float32: 1e38 each would make a zero vector silently.
    """
    try:
        with np.errstate(over='ignore', invalid='ignore'):   # judged below, not warned
            vector = validate_embedding(values, dim)
    except (EmbeddingError, TypeError, ValueError) as error:
        raise _invalid(f'bad embedding: {error}') from None
    if not (np.all(np.isfinite(vector)) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3):
        raise _invalid('bad embedding: values too large to normalise')
    return vector


def check_query(query: SearchQuery, dim: int) -> None:
    """Raise SearchRefused (INVALID_REQUEST, naming the field) unless every field is usable.

    The checks: kind a QueryKind; the field that kind needs (a person id of at most
    MAX_PERSON_ID_CHARS, a dim-value finite embedding, an HxWx3 uint8 image); a centre in
    [0, MAX_STAMP_NS] ns; a width in [0, MAX_WINDOW_S] s; a threshold in [-1, 1]; limits
    that are whole numbers >= 0; a thumbnail width in [MIN, MAX]_THUMBNAIL_WIDTH_PX and a
    JPEG quality in [1, 100]; a deep budget in [0, MAX_DEEP_BUDGET_S] s, above 0 for deep.
    """
    if query.kind not in set(QueryKind):
        raise _invalid(f'unknown query kind (query_type) {query.kind!r}: 0 person id, '
                       '1 embedding, 2 image')
    if query.kind == QueryKind.PERSON_ID:
        if not isinstance(query.person_id, str) or not query.person_id:
            raise _invalid('a person id query needs person_id')
        if len(query.person_id) > MAX_PERSON_ID_CHARS:
            raise _invalid(f'person_id is longer than {MAX_PERSON_ID_CHARS} characters')
    elif query.kind == QueryKind.EMBEDDING:
        check_embedding(query.embedding, dim)
    else:
        try:
            check_image(query.image)
        except FaceInputError as error:
            raise _invalid(f'bad image: {error}') from None
    if query.center_ns is not None:
        _check_number('center stamp [ns]', query.center_ns, 0, MAX_STAMP_NS, integer=True)
    _check_number('window width [s]', query.window_s, 0.0, MAX_WINDOW_S)
    if query.min_similarity is not None:
        _check_number('min_similarity', query.min_similarity, -1.0, 1.0)
    _check_number('max_results', query.max_results, 0, math.inf, integer=True)
    _check_number('thumbnail width [px]', query.thumbnail_width, MIN_THUMBNAIL_WIDTH_PX,
                  MAX_THUMBNAIL_WIDTH_PX, integer=True)
    _check_number('thumbnail quality', query.thumbnail_quality, 1, 100, integer=True)
    _check_number('thumbnail budget [bytes]', query.thumbnail_budget_bytes, 0, math.inf,
                  integer=True)
    _check_number('deep budget [s]', query.deep_budget_s, 0.0, MAX_DEEP_BUDGET_S)
    if query.deep and query.deep_budget_s == 0:
        raise _invalid('deep mode needs a deep budget above 0 s')


def query_window(query: SearchQuery, now_ns: int) -> tuple[int | None, int | None]:
    """Return a checked query's window [start, end] in ns; None bounds for a zero width."""
    if query.window_s == 0:
        return None, None
    width = seconds_to_ns(query.window_s)
    if query.center_ns is None:   # the window ending now: a width of 3600 is "the last hour"
        return now_ns - width, now_ns
    return query.center_ns - width // 2, query.center_ns + width // 2


class HistorySearch:
    """Searches of one FrameHistory (index and frames); thread-safe, so callers may share it.

    Searches read without blocking the history's recording (see EmbeddingIndex and
    FrameStore). Queries by image and deep mode need the face analyzer, which one search at a
    time uses (the face model is not made for threads).
    """

    def __init__(self, history: 'FrameHistory', analyzer: FaceAnalyzer | None = None,
                 settings: SearchSettings = SearchSettings()) -> None:
        """Search history (a FrameHistory) with analyzer's face model, by default settings."""
        self.history = history
        self.analyzer = analyzer
        self.settings = settings
        self._model_lock = threading.Lock()

    def search(self, query: SearchQuery, settings: SearchSettings | None = None,
               now_ns: int | None = None) -> SearchOutcome:
        """Answer query (with settings, else self.settings); never raises.

        now_ns: the caller's clock [ns], where a window without a centre ends (a node's ROS
        clock, which is a recording's time under use_sim_time); None: the wall clock.
        """
        began = time.perf_counter()
        try:
            outcome = self._search(query, settings or self.settings,
                                   time.time_ns() if now_ns is None else now_ns)
        except SearchRefused as refusal:
            outcome = SearchOutcome(refusal.code, str(refusal))
        except Exception as error:  # every failure must become an answer
            _LOG.exception('search failed')
            outcome = SearchOutcome(SearchCode.ERROR, f'search failed: {error}')
        return replace(outcome, elapsed_s=time.perf_counter() - began)

    def _search(self, query: SearchQuery, settings: SearchSettings,
                now_ns: int) -> SearchOutcome:
        check_query(query, self.history.index.dim)
        embedding, what = self.query_embedding(query)
        start_ns, end_ns = query_window(query, now_ns)
        threshold = (settings.min_similarity if query.min_similarity is None
                     else query.min_similarity)
        result = self.history.index.search(embedding, start_ns, end_ns, threshold,
                                           query.max_results, gap_s=settings.appearance_gap_s)
        appearances, frames = result.appearances, 0
        searched = f'{result.entries_searched} index entries'
        if query.deep and result.entries_searched == 0:
            appearances, frames, note = self._deep_search(embedding, start_ns, end_ns,
                                                          threshold, query, settings)
            searched += f', {frames} frames{note}'
        found = dict(embedding=embedding, entries_searched=result.entries_searched,
                     frames_searched=frames, searched_from_ns=result.searched_from_ns,
                     searched_to_ns=result.searched_to_ns)
        if result.entries_searched == 0 and frames == 0:
            return SearchOutcome(SearchCode.NO_HISTORY,
                                 f'no faces stored in the window for {what} ({searched})',
                                 **found)
        if not appearances:
            return SearchOutcome(SearchCode.NO_MATCH,
                                 f'no appearance of {what} at similarity >= {threshold:.2f} '
                                 f'({searched})', **found)
        if query.thumbnails:
            appearances = self._with_thumbnails(appearances, query)
        best = appearances[0]
        return SearchOutcome(
            SearchCode.OK, f'{len(appearances)} appearance(s) of {what}; best: '
            f'{best.person_id or "an unindexed face"} on {best.camera_id} at similarity '
            f'{best.best.similarity:.3f} ({searched})', appearances, **found)

    def query_embedding(self, query: SearchQuery) -> tuple[np.ndarray, str]:
        """Return the unit face embedding a query asks for and a few words saying what it is.

        Raises SearchRefused: UNKNOWN_PERSON for a person id without stored faces, NO_FACE
        for an image without one, INVALID_REQUEST for an unusable field.
        """
        if query.kind == QueryKind.PERSON_ID:
            # The index keeps each person's best faces: no block is read here.
            stored = self.history.index.embeddings_of(query.person_id, limit=PERSON_QUERY_FACES)
            if len(stored) == 0:
                raise SearchRefused(SearchCode.UNKNOWN_PERSON,
                                    f'no stored face of person {query.person_id!r}')
            # The mean of the person's best faces is steadier than any single one.
            return l2_normalize(np.mean(stored, axis=0)), f'person {query.person_id}'
        if query.kind == QueryKind.EMBEDDING:
            return check_embedding(query.embedding, self.history.index.dim), 'embedding'
        if query.kind != QueryKind.IMAGE:
            raise _invalid(f'unknown query kind (query_type) {query.kind!r}')
        try:
            image = check_image(query.image)
        except FaceInputError as error:
            raise _invalid(f'bad image: {error}') from None
        scale = MAX_QUERY_IMAGE_SIDE_PX / max(image.shape[:2])
        if scale < 1:   # detection time grows with the pixels; a face keeps enough of them
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        analyzer = self._analyzer('a query by image')
        with self._model_lock:
            face = analyzer.largest_face(image)
        if face is None:
            raise SearchRefused(SearchCode.NO_FACE, 'no face found in the query image')
        return face.embedding, 'the face in the image'

    def _analyzer(self, purpose: str) -> FaceAnalyzer:
        if self.analyzer is None:
            raise SearchRefused(SearchCode.ERROR, f'{purpose} needs a face model; this search '
                                'has none')
        return self.analyzer

    def _deep_search(self, embedding: np.ndarray, start_ns: int | None, end_ns: int | None,
                     threshold: float, query: SearchQuery,
                     settings: SearchSettings) -> tuple[list[Appearance], int, str]:
        """Embed the faces of stored frames where the index has nothing, within the budget.

        Frames are taken evenly spread over the window (DEEP_FRAMES_PER_S per second of
        budget), so a short budget still covers the whole window coarsely. Returns the
        appearances, the frames analysed and a note for the message.
        """
        analyzer = self._analyzer('deep mode')
        deadline = time.monotonic() + query.deep_budget_s
        store = self.history.store
        segments = store.segments()
        if not segments:
            return [], 0, ''
        start = min(s.start_ns for s in segments) if start_ns is None else start_ns
        end = max(s.end_ns for s in segments) if end_ns is None else end_ns
        frames = store.frames_in_range(start, end, max(1, int(query.deep_budget_s
                                                              * DEEP_FRAMES_PER_S)),
                                       settings.camera_id)
        hits: list[Hit] = []
        done = 0
        for frame in frames:
            if time.monotonic() > deadline:
                break
            done += 1
            image = _decode(frame)
            with self._model_lock:
                faces = analyzer.analyze(image) if image is not None else []
            if not faces:
                continue
            similarities = cosine_similarity(embedding, np.stack([f.embedding for f in faces]))
            hits += [Hit(frame.stamp_ns, settings.robot_id, frame.camera_id, '',
                         tuple(float(v) for v in face.box), face.quality, float(similarity),
                         '', frame.stamp_ns)
                     for face, similarity in zip(faces, similarities) if similarity >= threshold]
        note = (f' (deep: {done} of {len(frames)} sampled stored frames within '
                f'{query.deep_budget_s:g} s)')
        return (group_appearances(hits, settings.appearance_gap_s, query.max_results), done,
                note)

    def _with_thumbnails(self, appearances: list[Appearance],
                         query: SearchQuery) -> list[Appearance]:
        """Attach thumbnails best first, skipping those beyond the byte budget."""
        spent, out = 0, []
        for number, appearance in enumerate(appearances):
            thumbnail = None
            if number < MAX_THUMBNAILS:
                thumbnail = self.thumbnail(appearance, query.thumbnail_width,
                                           query.thumbnail_quality)
            if thumbnail is not None and query.thumbnail_budget_bytes:
                if spent + len(thumbnail.data) > query.thumbnail_budget_bytes:
                    thumbnail = None
                else:
                    spent += len(thumbnail.data)
            out.append(replace(appearance, thumbnail=thumbnail))
        return out

    def best_frame(self, appearance: Appearance) -> tuple[StoredFrame, np.ndarray] | None:
        """Return the stored frame of an appearance's best hit and that frame annotated (BGR).

        The annotation boxes the face and labels it with the person and similarity. None when
        the frame is no longer stored or cannot be decoded.
        """
        hit = appearance.best
        frame = self.history.store.nearest_frame(hit.frame_stamp_ns, FRAME_TOLERANCE_S,
                                                 hit.camera_id)
        image = None if frame is None else _decode(frame)
        if image is None:
            return None
        box = np.asarray(hit.box, dtype=np.float64)
        overlays = [Overlay(box=box, label=hit.person_id or 'unindexed face',
                            score=hit.similarity)] if np.all(np.isfinite(box)) else []
        return frame, draw_overlays(image, overlays, header=f'{hit.robot_id}/{hit.camera_id}')

    def thumbnail(self, appearance: Appearance, width: int = DEFAULT_THUMBNAIL_WIDTH_PX,
                  quality: int = DEFAULT_THUMBNAIL_QUALITY) -> StoredFrame | None:
        """Return the annotated best frame scaled to width as JPEG, or None (see best_frame)."""
        found = self.best_frame(appearance)
        if found is None:
            return None
        frame, image = found
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode('.jpg', small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return None
        return StoredFrame(frame.stamp_ns, frame.camera_id, jpeg.tobytes(), frame.frame_id,
                           'jpeg')


def _decode(frame: StoredFrame) -> np.ndarray | None:
    """Return a stored frame as BGR, or None (logged) when its bytes do not decode."""
    image = cv2.imdecode(np.frombuffer(frame.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        _LOG.warning('stored frame of %s at %d ns does not decode', frame.camera_id,
                     frame.stamp_ns)
    return image
