"""Forget one person: every stored trace of their face in a frame history, on request.

forget() takes the person ids to forget, or a face (an embedding) whose matches are forgotten,
and removes, in order:

1. from the segments: the person's detections from the stored identified_faces messages (with
   their embeddings) and their person_events messages; a face of another id whose embedding
   matches the face given goes too;
2. from the stored frames (segments and the RAM ring): the person's region is pixelated. The
   region of a frame is the union of the person's boxes (person box and face box) at the
   sightings before and after it, enlarged by BOX_MARGIN, for every frame from
   FRAME_MARGIN_S before their first to FRAME_MARGIN_S after their last sighting of each
   appearance (sightings at most gap_s apart), so frames between two identifications (the
   face node refreshes a face every few seconds) are covered too. Frames are blurred, not
   removed: other people in them stay;
3. the person's index entries and id;
4. their records in the tracker's JSONL event logs (event_log_dir);

and then searches the index for the face again: nothing stored before the call may match.

Cost: every segment is read once (the person may appear anywhere), and those holding the
person are rewritten; each blurred frame is decoded, pixelated and encoded again (a few
milliseconds for 640x480). Faces of the person that were never identified (seen but never
given their id) are not found: that would take the face model over every stored frame.
Messages are decoded and encoded by a codec (the node's: rclpy), so the core needs no ROS.
"""

from bisect import bisect_left
from dataclasses import dataclass, field
import logging
from pathlib import Path
import time
from typing import Any, Protocol

import cv2
import numpy as np

from facetrack_ros.core.embedding import cosine_similarity
from facetrack_ros.core.event_log import forget_person as forget_in_event_log
from facetrack_ros.core.history.config import seconds_to_ns
from facetrack_ros.core.history.frame_history import EVENTS_TYPE, FACES_TYPE, FrameHistory
from facetrack_ros.core.history.mcap_file import COMPRESSED_IMAGE_TYPE
from facetrack_ros.core.history.search import (check_query, HistorySearch, QueryKind,
                                               SearchQuery)

_LOG = logging.getLogger(__name__)

#: Frames this long before the first and after the last sighting of an appearance are
#: blurred too [s].
FRAME_MARGIN_S = 0.5
#: Each region is enlarged by this fraction of its size on every side.
BOX_MARGIN = 0.15
#: The pixelated region is this many blocks across its longer side.
PIXEL_BLOCKS = 8
#: JPEG quality of a blurred frame.
BLURRED_JPEG_QUALITY = 90


class Codec(Protocol):
    """Decodes and encodes stored CDR messages by type name (e.g. with rclpy)."""

    def decode(self, type_name: str, data: bytes) -> Any:
        """Return the message of type type_name in data."""

    def encode(self, type_name: str, message: Any) -> bytes:
        """Return message as CDR."""


class ForgetError(Exception):
    """Forgetting could not be done (the disk refuses writes); the message says what is left."""


@dataclass
class ForgetReport:
    """What forget() removed."""

    person_ids: list[str] = field(default_factory=list)
    index_entries: int = 0       # index entries deleted
    faces: int = 0               # detections removed from identified_faces messages
    events: int = 0              # person_events messages deleted
    frames_blurred: int = 0      # frames pixelated (segments and ring)
    segments_rewritten: int = 0
    event_log_records: int = 0
    remaining: int = 0           # entries still matching the face afterwards (should be 0)
    elapsed_s: float = 0.0

    @property
    def removed(self) -> int:
        """Return how many things were removed or pixelated (0: nothing of the person)."""
        return (self.index_entries + self.faces + self.events + self.frames_blurred
                + self.event_log_records)

    def summary(self) -> str:
        """Return a line saying what was forgotten."""
        return (f'forgot {", ".join(self.person_ids) or "an unnamed face"}: '
                f'{self.index_entries} index entries, {self.faces} faces, {self.events} '
                f'events, {self.event_log_records} event log records removed, '
                f'{self.frames_blurred} frames pixelated in {self.segments_rewritten} '
                f'rewritten segments; {self.remaining} stored faces still match')


@dataclass
class _Sighting:
    stamp_ns: int
    box: np.ndarray   # x1, y1, x2, y2 [px]


def _union(boxes: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(boxes)
    return np.array([*stacked[:, :2].min(axis=0), *stacked[:, 2:].max(axis=0)])


def _sighting_box(person_box: Any, face_box: Any) -> np.ndarray | None:
    """Return the region of one sighting: its person box and face box joined, if any."""
    boxes = [np.asarray(b, dtype=np.float64) for b in (person_box, face_box)]
    boxes = [b for b in boxes if b.shape == (4,) and np.all(np.isfinite(b))
             and b[2] > b[0] and b[3] > b[1]]
    return _union(boxes) if boxes else None


class _Appearances:
    """The sightings of the forgotten people on one camera, and the region of any frame."""

    def __init__(self, sightings: list[_Sighting], gap_ns: int) -> None:
        self._sightings = sorted(sightings, key=lambda s: s.stamp_ns)
        self._stamps = [s.stamp_ns for s in self._sightings]
        self._gap_ns = gap_ns
        self._margin_ns = seconds_to_ns(FRAME_MARGIN_S)

    def near(self, start_ns: int, end_ns: int) -> bool:
        """Return whether a frame in [start_ns, end_ns] may need blurring."""
        reach = max(self._gap_ns, self._margin_ns)
        first = bisect_left(self._stamps, start_ns - reach)
        return first < len(self._stamps) and self._stamps[first] <= end_ns + reach

    def region(self, stamp_ns: int) -> np.ndarray | None:
        """Return the region to blur in the frame at stamp_ns, or None."""
        after = bisect_left(self._stamps, stamp_ns)
        near = []
        if after > 0:
            near.append(self._sightings[after - 1])
        if after < len(self._sightings):
            near.append(self._sightings[after])
        if len(near) == 2 and near[1].stamp_ns - near[0].stamp_ns <= self._gap_ns:
            return _union([s.box for s in near])   # between two sightings of one appearance
        close = [s for s in near if abs(s.stamp_ns - stamp_ns) <= self._margin_ns]
        return _union([s.box for s in close]) if close else None


def pixelate(image: bytes, box: np.ndarray, format_name: str = 'jpeg') -> bytes | None:
    """Return image (JPEG or PNG bytes) with box, enlarged by BOX_MARGIN, pixelated.

    None when the image does not decode or the box is outside it.
    """
    frame = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
    if frame is None:
        return None
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = box
    pad_x, pad_y = (x2 - x1) * BOX_MARGIN, (y2 - y1) * BOX_MARGIN
    left, top = int(max(0, np.floor(x1 - pad_x))), int(max(0, np.floor(y1 - pad_y)))
    right, bottom = int(min(width, np.ceil(x2 + pad_x))), int(min(height, np.ceil(y2 + pad_y)))
    if right <= left or bottom <= top:
        return None
    region = frame[top:bottom, left:right]
    scale = PIXEL_BLOCKS / max(region.shape[:2])
    small = cv2.resize(region, (max(1, round(region.shape[1] * scale)),
                                max(1, round(region.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    frame[top:bottom, left:right] = cv2.resize(small, (region.shape[1], region.shape[0]),
                                               interpolation=cv2.INTER_NEAREST)
    png = 'png' in format_name.lower()
    ok, encoded = cv2.imencode('.png' if png else '.jpg', frame,
                               [] if png else [cv2.IMWRITE_JPEG_QUALITY, BLURRED_JPEG_QUALITY])
    return encoded.tobytes() if ok else None


class _Matcher:
    """Decides which stored detections and events are the forgotten person's."""

    def __init__(self, person_ids: set[str], embedding: np.ndarray | None,
                 threshold: float) -> None:
        self.person_ids = person_ids
        self.embedding = embedding
        self.threshold = threshold

    def detection(self, detection: Any) -> bool:
        if detection.person_id and detection.person_id in self.person_ids:
            return True
        if self.embedding is None or len(detection.embedding) != len(self.embedding):
            return False
        vector = np.asarray(detection.embedding, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if not (np.isfinite(norm) and norm > 0):
            return False
        return float(cosine_similarity(self.embedding, vector / norm)) >= self.threshold


def matching_person_ids(history: FrameHistory, embedding: np.ndarray,
                        threshold: float) -> set[str]:
    """Return the person ids of every index entry whose face matches embedding."""
    result = history.index.search(embedding, None, None, threshold, max_results=0)
    return {appearance.person_id for appearance in result.appearances if appearance.person_id}


@dataclass(frozen=True)
class Whom:
    """Whom a forget request names: person ids, the face that finds them, its threshold."""

    person_ids: set[str]
    embedding: np.ndarray | None   # unit face; None when a named person has no stored face
    threshold: float               # cosine similarity from which a stored face matches


def whom(searcher: HistorySearch, query: SearchQuery, default_threshold: float) -> Whom:
    """Return whom query names (kind, person_id or face, min_similarity; the rest unused).

    A person id names that person, found by the mean of their best stored faces; a face
    (embedding or image) names every person id whose stored faces match it. Raises
    SearchRefused: INVALID_REQUEST for a bad field, NO_FACE for an image without a face.
    """
    history = searcher.history
    check_query(query, history.index.dim)
    threshold = default_threshold if query.min_similarity is None else query.min_similarity
    if query.kind == QueryKind.PERSON_ID:
        stored = history.index.embeddings_of(query.person_id, limit=1)
        embedding = searcher.query_embedding(query)[0] if len(stored) else None
        return Whom({query.person_id}, embedding, threshold)
    embedding = searcher.query_embedding(query)[0]
    return Whom(matching_person_ids(history, embedding, threshold), embedding, threshold)


def forget(history: FrameHistory, person_ids: set[str], embedding: np.ndarray | None,
           threshold: float, codec: Codec, event_log_dir: Path | str | None = None,
           gap_s: float = 5.0) -> ForgetReport:
    """Forget person_ids and every stored face matching embedding (see the module docstring).

    embedding (a unit vector, or None) also finds the person's faces stored under other ids;
    threshold is the cosine similarity from which a face matches. Raises ForgetError when
    the open segments cannot be finished or a segment cannot be rewritten (the disk).
    """
    began = time.perf_counter()
    forget_from_ns = time.time_ns()
    report = ForgetReport()
    matcher = _Matcher(set(person_ids), embedding, threshold)
    with history.exclusive():   # no index maintenance meanwhile: it could index what goes
        failure = history.store.finish_open()
        if failure is not None:
            raise ForgetError(f'cannot finish the open segments ({failure}): nothing forgotten')
        segments = [info for info in history.store.segments() if info.finished]
        sightings: dict[str, list[_Sighting]] = {}
        touched: set[str] = set()
        for info in segments:
            found = _sightings(history, info.name, matcher, codec)
            if found:
                touched.add(info.name)
                sightings.setdefault(info.source, []).extend(found)
        appearances = {camera: _Appearances(found, seconds_to_ns(gap_s))
                       for camera, found in sightings.items()}
        for info in segments:
            cameras = appearances.get(info.source)
            if info.name not in touched and (cameras is None or not cameras.near(
                    info.start_ns, info.end_ns)):
                continue
            counts = _Counts()
            try:
                changed, dropped = history.store.rewrite(
                    info.name, _transform(matcher, cameras, codec, counts))
            except FileNotFoundError:
                continue   # deleted by retention meanwhile
            except OSError as error:
                raise ForgetError(f'cannot rewrite {info.name} ({error}); '
                                  f'{report.segments_rewritten} segments done') from error
            if changed or dropped:
                report.segments_rewritten += 1
                report.faces += counts.faces
                report.events += counts.events
                report.frames_blurred += counts.frames
                report.person_ids.extend(counts.ids)
        for camera, cameras in appearances.items():
            report.frames_blurred += _blur_ring(history, camera, cameras)
        ids = sorted(set(person_ids) | set(report.person_ids))
        for person_id in ids:
            report.index_entries += history.index.delete_person(person_id)
            if event_log_dir is not None:
                report.event_log_records += forget_in_event_log(event_log_dir, person_id)
        report.person_ids = ids
    if embedding is not None:
        before = history.index.search(embedding, None, forget_from_ns, threshold,
                                      max_results=0)
        report.remaining = before.hits
    report.elapsed_s = time.perf_counter() - began
    # The ids are not logged: the log would keep what was just forgotten.
    _LOG.warning('frame history: forgot %d person id(s): %d index entries, %d faces, %d events,'
                 ' %d event log records, %d frames pixelated in %d segments, %.2f s',
                 len(ids), report.index_entries, report.faces, report.events,
                 report.event_log_records, report.frames_blurred, report.segments_rewritten,
                 report.elapsed_s)
    return report


def _sightings(history: FrameHistory, name: str, matcher: _Matcher,
               codec: Codec) -> list[_Sighting]:
    """Return the forgotten people's sightings (stamp, region) in one segment."""
    found = []
    for schema, _, stamp, data in history.store.messages(name, {FACES_TYPE, EVENTS_TYPE}):
        try:
            message = codec.decode(schema.name, data)
        except Exception:  # noqa: B902 - a stored message that does not decode is left
            continue
        if schema.name == EVENTS_TYPE:
            box = _sighting_box(message.box, ())
            if message.person_id in matcher.person_ids and box is not None:
                found.append(_Sighting(stamp, box))
            continue
        for detection in message.detections:
            if matcher.detection(detection):
                box = _sighting_box(detection.box, detection.face_box)
                if box is not None:
                    found.append(_Sighting(stamp, box))
    return found


@dataclass
class _Counts:
    faces: int = 0
    events: int = 0
    frames: int = 0
    ids: set[str] = field(default_factory=set)


def _transform(matcher: _Matcher, appearances: _Appearances | None, codec: Codec,
               counts: _Counts):
    """Return the FrameStore.rewrite transform that forgets matcher's person in one segment."""

    def transform(type_name: str, topic: str, stamp_ns: int, data: bytes) -> bytes | None:
        if type_name == EVENTS_TYPE:
            if codec.decode(type_name, data).person_id in matcher.person_ids:
                counts.events += 1
                return None
        elif type_name == FACES_TYPE:
            message = codec.decode(type_name, data)
            kept = []
            for detection in message.detections:
                if matcher.detection(detection):
                    counts.faces += 1
                    if detection.person_id:
                        counts.ids.add(detection.person_id)
                else:
                    kept.append(detection)
            if len(kept) != len(message.detections):
                message.detections = kept
                return codec.encode(type_name, message)
        elif type_name == COMPRESSED_IMAGE_TYPE and appearances is not None:
            box = appearances.region(stamp_ns)
            if box is not None:
                message = codec.decode(type_name, data)
                blurred = pixelate(bytes(message.data), box, message.format)
                if blurred is not None:
                    message.data = blurred
                    counts.frames += 1
                    return codec.encode(type_name, message)
        return data

    return transform


def _blur_ring(history: FrameHistory, camera: str, appearances: _Appearances) -> int:
    """Pixelate the forgotten people in the ring's frames of camera; return how many."""
    def blur(frame) -> bytes | None:
        box = appearances.region(frame.stamp_ns)
        return None if box is None else pixelate(frame.data, box, frame.format)

    return history.store.ring_replace(camera, blur)
