"""Person tracking: ByteTrack boxes plus face re-identification, and PERSON_IN/OUT events.

ultralytics' BYTETracker follows the person boxes from frame to frame (Kalman motion and IoU).
PersonTracker puts stable person ids on its tracks. ByteTrack drops a track once it misses
for track_buffer_s (behind a sign, in a crowd) and then starts a new one: a new track that
starts where a person whose track was just lost was heading continues that person. Any other
confirmed track waits up to identity_wait_s for a face; a face that matches a person who left
within reid_memory_s gives that person's id back, otherwise the track becomes a new person.
Each person's appearance yields exactly one PERSON_IN (or PERSON_RETURNED) and, after
absence_timeout_s unseen, exactly one PERSON_OUT. Time only moves with the stamps passed in,
so replays behave like live runs; after a jump back in time (a rosbag loop, a sim-time reset)
reset() restarts tracking.

EmbeddingScheduler picks the few tracks whose face is worth embedding in a given frame.
"""

from collections import Counter
from dataclasses import dataclass, field
import enum
import math
from types import SimpleNamespace
from typing import Sequence

import numpy as np
from ultralytics.trackers.byte_tracker import BYTETracker

from facetrack_ros.core.embedding import (cosine_similarity, DEFAULT_MIN_SIMILARITY,
                                          DLIB_EMBEDDING_DIM, l2_normalize, validate_embedding)

#: Faces of a track whose box overlaps another visible track's box by at least this IoU are
#: ignored: the face in the crop may be the other person's, which would poison embeddings.
AMBIGUOUS_BOX_IOU = 0.3

#: Faces at least this good may break a track's identity when they contradict it; poorer
#: faces (blurred, turned away) are only ignored.
BREAK_MIN_QUALITY = 0.5

#: Weight of a zero-quality face in a running embedding, so the weighted mean stays defined.
_MIN_SAMPLE_WEIGHT = 1e-3


@dataclass(frozen=True)
class Detection:
    """One person box from the detector.

    box: x1, y1, x2, y2 [px], shape (4,).
    confidence: detector score [0..1].
    """

    box: np.ndarray
    confidence: float


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of PersonTracker; times are in seconds of the stamps passed in."""

    #: Expected camera rate [Hz]: converts track_buffer_s to ByteTrack frames until the rate
    #: has been measured from the stamps.
    frame_rate: float = 30.0
    #: Detections scoring at least this take part in ByteTrack's first association [0..1].
    track_high_thresh: float = 0.25
    #: Detections scoring above this (and below track_high_thresh) can only extend tracks [0..1].
    track_low_thresh: float = 0.1
    #: Unmatched detections scoring at least this start a new track [0..1].
    new_track_thresh: float = 0.25
    #: Largest ByteTrack matching cost (1 - IoU, fused with the score) still matched [0..1].
    match_thresh: float = 0.8
    #: Fuse detection scores into ByteTrack's IoU cost.
    fuse_score: bool = True
    #: How long ByteTrack keeps a lost track for re-finding it by motion [s].
    track_buffer_s: float = 1.0
    #: A new track continues a present person whose track was lost if it starts within this
    #: distance [person heights] of where that person was heading; 0 disables re-linking.
    relink_distance: float = 1.0
    #: How long a confirmed track waits for a face before its PERSON_IN is decided [s].
    identity_wait_s: float = 1.0
    #: A person unseen for this long is reported PERSON_OUT [s].
    absence_timeout_s: float = 2.0
    #: How long after their last sighting a person can still be re-identified by face [s].
    reid_memory_s: float = 600.0
    #: Cosine similarity from which a face is taken to belong to a person [-1..1].
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    #: How much better [cosine] a face must match another visible person than its own track's
    #: person before the two tracks' person ids are swapped.
    swap_margin: float = 0.1
    #: Face samples kept per person for the running embedding (the best by quality).
    max_samples: int = 20
    #: Faces of lower quality [0..1] are ignored.
    min_face_quality: float = 0.0
    #: Length of the face embeddings passed to add_face.
    embedding_dim: int = DLIB_EMBEDDING_DIM

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        for name, value in vars(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'{name} must be finite, got {value}')
        checks = [
            (self.frame_rate > 0, 'frame_rate must be > 0 Hz'),
            (0 <= self.track_low_thresh <= self.track_high_thresh <= 1,
             'need 0 <= track_low_thresh <= track_high_thresh <= 1'),
            (0 < self.new_track_thresh <= 1, 'new_track_thresh must be in (0, 1]'),
            (0 < self.match_thresh <= 1, 'match_thresh must be in (0, 1]'),
            (self.track_buffer_s > 0, 'track_buffer_s must be > 0 s'),
            (self.relink_distance >= 0, 'relink_distance must be >= 0 person heights'),
            (self.identity_wait_s >= 0, 'identity_wait_s must be >= 0 s'),
            (self.absence_timeout_s > 0, 'absence_timeout_s must be > 0 s'),
            (self.reid_memory_s >= self.absence_timeout_s,
             'reid_memory_s must be >= absence_timeout_s, or no one could be re-identified'),
            (-1 <= self.min_similarity <= 1, 'min_similarity must be in [-1, 1]'),
            (self.swap_margin >= 0, 'swap_margin must be >= 0'),
            (self.max_samples >= 1, 'max_samples must be >= 1'),
            (0 <= self.min_face_quality <= 1, 'min_face_quality must be in [0, 1]'),
            (self.embedding_dim >= 1, 'embedding_dim must be >= 1'),
        ]
        for ok, reason in checks:
            if not ok:
                raise ValueError(f'invalid tracker config: {reason}')


class EventKind(enum.IntEnum):
    """Kind of a person event; the values are those of facetrack_ros/msg/PersonEvent."""

    PERSON_IN = 1
    PERSON_OUT = 2
    PERSON_RETURNED = 3


@dataclass(frozen=True)
class PersonEventRecord:
    """A change in who is in view.

    stamp: time of the frame (or face) that caused the event [s].
    track_id: the person's ByteTrack track at the time of the event.
    box, confidence: the person's last box x1, y1, x2, y2 [px] and detector score.
    duration: for PERSON_OUT, first to last sighting of the appearance [s]; 0 otherwise.
    embedding: the person's running face embedding, or None if no face was seen.
    """

    kind: EventKind
    stamp: float
    person_id: str
    track_id: int
    box: np.ndarray
    confidence: float
    duration: float
    embedding: np.ndarray | None

    def to_json_dict(self) -> dict:
        """Return the event as plain JSON types; kind is its name, e.g. 'PERSON_IN'."""
        return {
            'kind': self.kind.name,
            'stamp': float(self.stamp),
            'person_id': self.person_id,
            'track_id': int(self.track_id),
            'box': [float(v) for v in self.box],
            'confidence': float(self.confidence),
            'duration': float(self.duration),
            'embedding': None if self.embedding is None else [float(v) for v in self.embedding],
        }


@dataclass(frozen=True)
class TrackedPerson:
    """One track seen in the latest frame.

    person_id: stable person id, or '' while the track's identity is pending (no PERSON_IN yet).
    box: x1, y1, x2, y2 [px] of the detection matched to the track; confidence its score.
    match_similarity: cosine similarity of the track's latest face to its person's running
    embedding before that face was added; 0 when there was none to compare.
    """

    track_id: int
    person_id: str
    box: np.ndarray
    confidence: float
    match_similarity: float


@dataclass(frozen=True)
class PersonInfo:
    """Read-only view of a known person for history and search.

    embedding: running face embedding (unit length, read-only), or None if no face was seen.
    first_seen, last_seen: first sighting ever and latest sighting [s].
    present: True between the person's PERSON_IN/RETURNED and PERSON_OUT.
    """

    person_id: str
    embedding: np.ndarray | None
    first_seen: float
    last_seen: float
    present: bool


class PersonState(enum.Enum):
    """Where a person is in the IN/OUT cycle."""

    PRESENT = 1  # PERSON_IN/RETURNED sent, no PERSON_OUT since (may be briefly unseen)
    GONE = 2     # PERSON_OUT sent; kept for re-identification until reid_memory_s


@dataclass
class _Person:
    """Mutable record of one person."""

    person_id: str
    track_id: int
    first_seen: float
    appearance_start: float  # first sighting of the current appearance, for PERSON_OUT duration
    last_seen: float
    box: np.ndarray
    confidence: float
    last_event_stamp: float
    velocity: np.ndarray  # of the box centre at the latest sighting, x, y [px/s]
    state: PersonState = PersonState.PRESENT
    # Best face samples as (quality, unit vector); embedding is their cached weighted mean.
    samples: list[tuple[float, np.ndarray]] = field(default_factory=list)
    embedding: np.ndarray | None = None

    def add_sample(self, vector: np.ndarray, quality: float, max_samples: int) -> None:
        """Keep the max_samples best faces and refresh the running embedding."""
        if len(self.samples) >= max_samples:
            worst = min(range(len(self.samples)), key=lambda i: self.samples[i][0])
            if quality <= self.samples[worst][0]:
                return
            del self.samples[worst]
        self.samples.append((quality, vector))
        weights = np.array([max(q, _MIN_SAMPLE_WEIGHT) for q, _ in self.samples], np.float32)
        vectors = np.stack([v for _, v in self.samples])
        embedding = l2_normalize(weights @ vectors)
        embedding.flags.writeable = False  # shared with PersonInfo and events without copies
        self.embedding = embedding


#: Largest height ratio between a lost person and a new track that continues them: a box
#: much taller or shorter at the same place is someone nearer or farther from the camera.
RELINK_MAX_HEIGHT_RATIO = 1.5
#: Weight of the newest frame in a track's smoothed velocity: detector boxes jitter by a few
#: pixels, which over a 0.1 s frame gap is tens of px/s.
_VELOCITY_SMOOTHING = 0.3


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


@dataclass
class _Track:
    """A ByteTrack track as PersonTracker sees it; person_id None means identity pending."""

    track_id: int
    first_seen: float
    last_seen: float
    box: np.ndarray
    confidence: float
    first_box: np.ndarray
    person_id: str | None = None
    similarity: float = 0.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # [px/s]

    def move(self, stamp: float, box: np.ndarray, confidence: float) -> None:
        """Take the track's box at stamp and update its smoothed velocity."""
        if stamp > self.last_seen:
            step = (_centre(box) - _centre(self.box)) / (stamp - self.last_seen)
            self.velocity = (step if self.last_seen == self.first_seen else
                             self.velocity + _VELOCITY_SMOOTHING * (step - self.velocity))
        self.last_seen, self.box, self.confidence = stamp, box, confidence


@dataclass(frozen=True)
class _Boxes:
    """The detection batch in the shape BYTETracker.update reads (like ultralytics' Boxes)."""

    conf: np.ndarray  # (N,)
    xywh: np.ndarray  # (N, 4) centre x, centre y, width, height [px]
    cls: np.ndarray   # (N,) all 0: one class, person

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> '_Boxes':
        return _Boxes(self.conf[mask], self.xywh[mask], self.cls[mask])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Return the IoU of one x1, y1, x2, y2 box with each row of boxes (N, 4)."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


class PersonTracker:
    """Stable person ids and PERSON_IN/OUT/RETURNED events on top of ByteTrack.

    Call update() once per frame with that frame's detections (an empty list still advances
    time), and add_face() whenever a face embedding of a track is ready, possibly a few frames
    late. Tracks move through two phases: pending (person_id None: confirmed by ByteTrack, no
    identity yet) and bound (person_id set, the person's PERSON_IN or RETURNED was sent or the
    person was already present). Persons are PRESENT or GONE (see PersonState).

    Two people who cross keep their ids through ByteTrack's motion model. If ByteTrack swaps
    them anyway, the next unambiguous face of one of the tracks matches the other visible
    person much better than its own, and the two tracks' person ids are swapped back.

    Stamps must not go back; update() refuses an earlier one. Call reset() when time jumps back.
    """

    def __init__(self, config: TrackerConfig, id_prefix: str = 'person') -> None:
        """Check config and start with no tracks and no persons."""
        config.validate()
        self._config = config
        self._id_prefix = id_prefix
        self._frame_interval = 1.0 / config.frame_rate  # [s], smoothed from the stamps
        self._byte = BYTETracker(SimpleNamespace(
            track_high_thresh=config.track_high_thresh, track_low_thresh=config.track_low_thresh,
            new_track_thresh=config.new_track_thresh, match_thresh=config.match_thresh,
            fuse_score=config.fuse_score, track_buffer=self._buffer_frames()))
        self._now = -math.inf  # stamp of the latest update
        # ByteTrack numbers its tracks from 1 again after a reset; adding the highest id handed
        # out before keeps track ids unique, so a late face of an old track cannot hit a new one.
        self._track_id_offset = 0
        self._max_track_id = 0
        self._tracks: dict[int, _Track] = {}
        self._persons: dict[str, _Person] = {}
        self._next_person = 1

    @property
    def persons(self) -> dict[str, PersonInfo]:
        """Persons still remembered (present, or gone less than reid_memory_s ago), by id."""
        return {pid: PersonInfo(pid, p.embedding, p.first_seen, p.last_seen,
                                p.state is PersonState.PRESENT)
                for pid, p in self._persons.items()}

    @property
    def active_count(self) -> int:
        """Number of persons in view: PERSON_IN/RETURNED sent and no PERSON_OUT yet."""
        return sum(p.state is PersonState.PRESENT for p in self._persons.values())

    def person_of_track(self, track_id: int) -> str | None:
        """Return the person id of a track, or None while pending or for an unknown track."""
        track = self._tracks.get(track_id)
        return None if track is None else track.person_id

    def person_embedding(self, person_id: str) -> np.ndarray | None:
        """Return the person's running embedding (read-only), or None if unknown or faceless."""
        person = self._persons.get(person_id)
        return None if person is None else person.embedding

    def update(self, stamp: float, detections: Sequence[Detection]
               ) -> tuple[list[TrackedPerson], list[PersonEventRecord]]:
        """Track one frame's detections; return its visible tracks and the events it caused.

        Raises ValueError for a stamp earlier than the previous one (see reset()) and for
        detections with NaN or infinite values.
        """
        if not math.isfinite(stamp) or stamp < self._now:
            raise ValueError(f'stamp {stamp} is not finite or goes back from {self._now};'
                             ' call reset() after a jump back in time')
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        conf = np.array([d.confidence for d in detections], np.float32)
        if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(conf))):
            raise ValueError('detections have NaN or infinite boxes or confidences')
        self._advance_clock(stamp)
        xywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
        rows = self._byte.update(_Boxes(conf, xywh, np.zeros_like(conf)))

        events: list[PersonEventRecord] = []
        visible: list[_Track] = []
        for row in rows.reshape(-1, 8):
            track_id, idx = int(row[4]) + self._track_id_offset, int(row[7])
            self._max_track_id = max(self._max_track_id, track_id)
            track = self._tracks.get(track_id)
            if track is None:
                track = self._tracks[track_id] = _Track(track_id, stamp, stamp, boxes[idx],
                                                        float(conf[idx]), boxes[idx])
            track.move(stamp, boxes[idx], float(conf[idx]))
            visible.append(track)
            if track.person_id is not None:
                person = self._persons[track.person_id]
                self._see(person, track)
                if person.state is PersonState.GONE:  # ByteTrack re-found a timed-out person
                    person.appearance_start = stamp
                    events.append(self._announce(EventKind.PERSON_RETURNED, person, track,
                                                 stamp))
        # After every bound track has been seen: only persons missing from this frame can be
        # continued by a new track.
        self._relink([t for t in visible if t.person_id is None], stamp)
        for track in visible:
            if (track.person_id is None
                    and stamp - track.first_seen >= self._config.identity_wait_s):
                events.append(self._announce(EventKind.PERSON_IN, self._new_person(track),
                                             track, stamp))

        events += self._expire(stamp)
        return [TrackedPerson(t.track_id, t.person_id or '', t.box, t.confidence, t.similarity)
                for t in visible], events

    def reset(self, stamp: float) -> list[PersonEventRecord]:
        """Restart tracking at stamp after time jumped (a rosbag loop, a sim-time reset).

        Every track is forgotten and the next update() may carry any stamp from stamp on; new
        tracks get ids never used before. Persons still present get their PERSON_OUT, returned
        here and stamped at the latest update, so each PERSON_IN keeps its PERSON_OUT.

        Persons and their face embeddings are kept, so someone seen before the jump who shows
        up again is re-identified (PERSON_RETURNED, same id; ids are never reused). Their
        times are moved by stamp minus the latest update's stamp, as if the new timeline
        continued the old one without a gap: reid_memory_s still counts from their last
        sighting. Raises ValueError for a stamp that is not finite.
        """
        if not math.isfinite(stamp):
            raise ValueError(f'reset stamp {stamp} is not finite')
        events = [self._leave(person, self._now) for person in self._persons.values()
                  if person.state is PersonState.PRESENT]
        shift = stamp - self._now   # persons exist only after an update, so _now is finite
        for person in self._persons.values():
            person.first_seen += shift
            person.appearance_start += shift
            person.last_seen += shift
            person.last_event_stamp += shift
        self._byte.reset()
        self._track_id_offset = self._max_track_id
        self._tracks.clear()
        self._now = stamp
        return events

    def add_face(self, stamp: float, track_id: int, embedding: np.ndarray, quality: float
                 ) -> list[PersonEventRecord]:
        """Use a face embedding of a track, seen at stamp [s]; return the events it caused.

        Raises EmbeddingError (a ValueError) for a wrong-length or non-finite embedding and
        ValueError for a quality outside [0, 1]. Faces of unknown tracks, of low quality, or
        from a box that overlaps another visible person (AMBIGUOUS_BOX_IOU) are ignored.
        """
        vector = validate_embedding(embedding, self._config.embedding_dim)
        if not 0 <= quality <= 1:
            raise ValueError(f'face quality must be in [0, 1], got {quality}')
        track = self._tracks.get(track_id)
        if track is None or quality < self._config.min_face_quality or self._ambiguous(track):
            return []
        if track.person_id is None:
            return self._identify(stamp, track, vector, quality)
        person = self._persons[track.person_id]
        track.similarity = self._similarity(person, vector)
        self._fix_swap(track, vector)
        person = self._persons[track.person_id]  # the swap may have changed it
        if self._contradicts(person, track, quality):
            # A good face far below the match threshold is someone else: ByteTrack carried the
            # box across a cut or a hand-over. Identify the track afresh.
            track.person_id = None
            return self._identify(stamp, track, vector, quality)
        # A face unlike the person's known face is more likely a bad crop than new information.
        if person.embedding is None or track.similarity >= self._config.min_similarity:
            person.add_sample(vector, quality, self._config.max_samples)
        return []

    def _relink(self, pending: list[_Track], stamp: float) -> None:
        """Bind pending tracks that start where a present, unseen person was heading.

        The person's last box is moved on by its velocity to the track's first sighting; the
        distance from there to the track's first box, in the person's heights, must be at most
        relink_distance, and the two heights within RELINK_MAX_HEIGHT_RATIO of each other. Only
        one-to-one matches count: in a group it is a guess which new track is whose, and a wrong
        guess would hand one person's id to another, so those tracks wait for a face.
        """
        limit = self._config.relink_distance
        missing = [p for p in self._persons.values()
                   if p.state is PersonState.PRESENT and p.last_seen < stamp]
        if not (limit > 0 and pending and missing):
            return
        pairs = []
        for track in pending:
            for person in missing:
                gap = track.first_seen - person.last_seen
                if gap <= 0:  # both seen at once: two people
                    continue
                height = max(float(person.box[3] - person.box[1]), 1.0)
                ratio = float(track.first_box[3] - track.first_box[1]) / height
                heading = _centre(person.box) + person.velocity * gap
                distance = float(np.linalg.norm(_centre(track.first_box) - heading)) / height
                if (distance <= limit
                        and 1 / RELINK_MAX_HEIGHT_RATIO <= ratio <= RELINK_MAX_HEIGHT_RATIO):
                    pairs.append((track.track_id, person.person_id))
        track_counts = Counter(track_id for track_id, _ in pairs)
        person_counts = Counter(person_id for _, person_id in pairs)
        for track_id, person_id in pairs:
            if track_counts[track_id] == 1 and person_counts[person_id] == 1:
                track = self._tracks[track_id]
                track.person_id = person_id
                self._see(self._persons[person_id], track)

    def _contradicts(self, person: '_Person', track: '_Track', quality: float) -> bool:
        """Return whether a face of good quality clearly belongs to someone else."""
        return (person.embedding is not None and quality >= BREAK_MIN_QUALITY
                and track.similarity < self._config.min_similarity - self._config.swap_margin)

    def _buffer_frames(self) -> int:
        return max(1, round(self._config.track_buffer_s / self._frame_interval))

    def _advance_clock(self, stamp: float) -> None:
        """Move time to stamp, keeping ByteTrack's frame-counted buffer at track_buffer_s."""
        interval = stamp - self._now
        # A gap longer than the track buffer is an outage, not the camera's frame rate.
        if 0 < interval <= self._config.track_buffer_s:
            self._frame_interval += 0.1 * (interval - self._frame_interval)
            self._byte.max_frames_lost = self._buffer_frames()
        self._now = stamp

    def _identify(self, stamp: float, track: _Track, vector: np.ndarray, quality: float
                  ) -> list[PersonEventRecord]:
        """Decide a pending track's person by its face: a remembered one, or a new one."""
        visible = {t.person_id for t in self._tracks.values()
                   if t.person_id is not None and t.last_seen == self._now}
        # Never take the id of someone seen in the latest frame on another track.
        candidates = [p for p in self._persons.values()
                      if p.embedding is not None and p.person_id not in visible]
        if candidates:
            sims = cosine_similarity(vector, np.stack([p.embedding for p in candidates]))
            best = int(np.argmax(sims))
            if sims[best] >= self._config.min_similarity:
                return self._rebind(stamp, track, candidates[best], float(sims[best]), vector,
                                    quality)
        person = self._new_person(track)
        person.add_sample(vector, quality, self._config.max_samples)
        return [self._announce(EventKind.PERSON_IN, person, track, stamp)]

    def _rebind(self, stamp: float, track: _Track, person: _Person, similarity: float,
                vector: np.ndarray, quality: float) -> list[PersonEventRecord]:
        """Give a pending track a remembered person's id; RETURNED if they had been OUT."""
        # The person's old tracks stay bound to them: ByteTrack may still re-find one (it keeps
        # lost tracks for track_buffer_s), and it must come back as this person, not as a
        # pending track that would turn into a second person.
        track.person_id, track.similarity = person.person_id, similarity
        person.add_sample(vector, quality, self._config.max_samples)
        if person.state is PersonState.PRESENT:  # brief occlusion: the appearance goes on
            self._see(person, track)
            return []
        person.appearance_start = track.first_seen
        self._see(person, track)
        return [self._announce(EventKind.PERSON_RETURNED, person, track, stamp)]

    def _fix_swap(self, track: _Track, vector: np.ndarray) -> None:
        """Swap person ids with the visible track whose person this face matches much better."""
        others = [t for t in self._tracks.values()
                  if t is not track and t.person_id is not None and t.last_seen == self._now
                  and self._persons[t.person_id].embedding is not None]
        if not others:
            return
        sims = cosine_similarity(vector, np.stack([self._persons[t.person_id].embedding
                                                   for t in others]))
        best = int(np.argmax(sims))
        if (sims[best] >= self._config.min_similarity
                and sims[best] >= track.similarity + self._config.swap_margin):
            other = others[best]
            track.person_id, other.person_id = other.person_id, track.person_id
            track.similarity, other.similarity = float(sims[best]), 0.0
            self._see(self._persons[track.person_id], track)
            self._see(self._persons[other.person_id], other)

    def _ambiguous(self, track: _Track) -> bool:
        others = [t.box for t in self._tracks.values()
                  if t is not track and t.last_seen == self._now]
        return bool(others) and bool(np.max(box_iou(track.box, np.stack(others)))
                                     >= AMBIGUOUS_BOX_IOU)

    def _similarity(self, person: _Person, vector: np.ndarray) -> float:
        if person.embedding is None:
            return 0.0
        return float(cosine_similarity(vector, person.embedding[None])[0])

    def _new_person(self, track: _Track) -> _Person:
        """Make the track a new person, to be announced by the caller."""
        person_id = f'{self._id_prefix}-{self._next_person}'
        self._next_person += 1
        person = self._persons[person_id] = _Person(
            person_id, track.track_id, track.first_seen, track.first_seen, track.last_seen,
            track.box, track.confidence, -math.inf, track.velocity)
        track.person_id = person_id
        return person

    def _see(self, person: _Person, track: _Track) -> None:
        """Take the person's latest sighting from the track, unless it has an older one."""
        if track.last_seen >= person.last_seen:
            person.last_seen, person.box, person.confidence = (track.last_seen, track.box,
                                                               track.confidence)
            person.track_id, person.velocity = track.track_id, track.velocity

    def _announce(self, kind: EventKind, person: _Person, track: _Track, stamp: float
                  ) -> PersonEventRecord:
        """Mark the person PRESENT and return its PERSON_IN or PERSON_RETURNED."""
        person.state = PersonState.PRESENT
        # A face a frame or two old must not stamp the event before the person's PERSON_OUT.
        person.last_event_stamp = max(stamp, person.last_event_stamp)
        return PersonEventRecord(kind, person.last_event_stamp, person.person_id,
                                 track.track_id, track.box, track.confidence, 0.0,
                                 person.embedding)

    def _leave(self, person: _Person, stamp: float) -> PersonEventRecord:
        """Mark the person GONE and return its PERSON_OUT for the appearance that ended."""
        person.state, person.last_event_stamp = PersonState.GONE, stamp
        return PersonEventRecord(EventKind.PERSON_OUT, stamp, person.person_id, person.track_id,
                                 person.box, person.confidence,
                                 person.last_seen - person.appearance_start, person.embedding)

    def _expire(self, stamp: float) -> list[PersonEventRecord]:
        """Send PERSON_OUT for absent persons and forget old persons and dropped tracks."""
        events = []
        for person in list(self._persons.values()):
            unseen = stamp - person.last_seen
            if person.state is PersonState.PRESENT and unseen >= self._config.absence_timeout_s:
                events.append(self._leave(person, stamp))
            elif person.state is PersonState.GONE and unseen > self._config.reid_memory_s:
                del self._persons[person.person_id]
        live = {t.track_id + self._track_id_offset
                for t in self._byte.tracked_stracks + self._byte.lost_stracks}
        self._tracks = {tid: t for tid, t in self._tracks.items()
                        if tid in live and (t.person_id is None or t.person_id in self._persons)}
        return events


@dataclass
class _EmbedState:
    """What EmbeddingScheduler knows about one track."""

    embedded_at: float  # stamp of the latest selection or recorded embedding [s]
    area: float         # box area when last selected [px^2]
    quality: float      # quality of the latest recorded face [0..1]; 0 if none yet
    seen_at: float      # latest stamp the track was passed to select() [s]


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


class EmbeddingScheduler:
    """Choose which tracks get a (costly) face embedding in a frame.

    Priorities: tracks never embedded (largest box first), then tracks whose box grew by
    better_box_ratio since their last embedding (a bigger face is a better face; largest
    growth first), then tracks not embedded for refresh_s (poorest face first). A selected
    track counts as embedded from the moment it is selected, so a slow face node is not asked
    twice; record() adds the quality it got. Tracks not passed to select() for refresh_s are
    forgotten.
    """

    def __init__(self, refresh_s: float = 2.0, better_box_ratio: float = 1.3,
                 max_per_frame: int = 4) -> None:
        """Set the refresh period [s], box growth factor (> 1) and per-frame budget (>= 1)."""
        if not (math.isfinite(refresh_s) and refresh_s > 0):
            raise ValueError(f'refresh_s must be > 0 s, got {refresh_s}')
        if not better_box_ratio > 1:
            raise ValueError(f'better_box_ratio must be > 1, got {better_box_ratio}')
        if max_per_frame < 1:
            raise ValueError(f'max_per_frame must be >= 1, got {max_per_frame}')
        self._refresh_s = refresh_s
        self._better_box_ratio = better_box_ratio
        self._max_per_frame = max_per_frame
        self._tracks: dict[int, _EmbedState] = {}

    def select(self, stamp: float, persons: Sequence[TrackedPerson]) -> list[int]:
        """Return the track ids to embed now, at most max_per_frame, most useful first."""
        new, grown, stale = [], [], []
        for person in persons:
            area = _area(person.box)
            state = self._tracks.get(person.track_id)
            if state is None:
                new.append((-area, person.track_id))
                continue
            state.seen_at = stamp
            if area >= self._better_box_ratio * max(state.area, 1.0):
                grown.append((-area / max(state.area, 1.0), person.track_id))
            elif stamp - state.embedded_at >= self._refresh_s:
                stale.append((state.quality, state.embedded_at, person.track_id))
        chosen = [p[-1] for p in sorted(new) + sorted(grown) + sorted(stale)]
        chosen = chosen[:self._max_per_frame]
        areas = {p.track_id: _area(p.box) for p in persons}
        for track_id in chosen:
            quality = self._tracks[track_id].quality if track_id in self._tracks else 0.0
            self._tracks[track_id] = _EmbedState(stamp, areas[track_id], quality, stamp)
        self._tracks = {tid: s for tid, s in self._tracks.items()
                        if stamp - s.seen_at < self._refresh_s}
        return chosen

    def record(self, track_id: int, stamp: float, quality: float,
               box: np.ndarray | None = None) -> None:
        """Note that track_id's face was embedded from the frame at stamp with this quality.

        quality is 0 when no face was found. box, the person box the face was looked for in,
        becomes the baseline for better_box_ratio; by default the box it was selected with.
        """
        state = self._tracks.get(track_id)
        if state is not None:
            state.embedded_at, state.quality = max(state.embedded_at, stamp), quality
            if box is not None:
                state.area = _area(box)
