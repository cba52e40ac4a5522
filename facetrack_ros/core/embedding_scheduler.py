"""Which tracks get a (costly) face embedding in a frame: information that is missing first."""

from collections import Counter
from dataclasses import dataclass
import math
from typing import Sequence

import numpy as np

from facetrack_ros.core.embedding import MIN_DECISION_QUALITY
from facetrack_ros.core.face import Face, FaceAnalyzer, FaceSearch
from facetrack_ros.core.identity import CONTRADICTION_MAX_SIMILARITY
from facetrack_ros.core.tracking import SLOW_INTERVAL_S, TrackedPerson

#: Every this many attempts in a row without a usable face, a track gets a thorough search
#: (FaceAnalyzer's slower detector): with retry_s 0.25 s, first about a second after the first
#: try, then every 1.5 s, so people seen from behind cost the slow detector little. A track
#: whose usable face only a thorough search found (someone in three-quarter view) is searched
#: thoroughly whenever it needs a face (pending, in question); its refreshes search thoroughly
#: only on the every-third-miss rule: at 60-90 ms a box, thorough refreshes of everyone
#: turned (most people on the Hamilton clip's stage) cost the face node a fifth of a core.
#: Other refreshes (periodic, or of a grown box) use the fast detector alone: the close-up
#: search (FaceSearch.CLOSE_UP, 30-75 ms a box) is for faces that are missing or needed.
#: At a slow rate (frames SLOW_INTERVAL_S apart or more) a track without a usable face is
#: searched thoroughly from its first try: a walker is then a new track in each of the one
#: to three frames that show them, and never reaches a third miss (the crossing at 0.5/s:
#: Dorsey's frontal face, 78 px, found by the CNN only, was never embedded). A face found so
#: is not taken for one only the thorough search finds: the fast detector may find it too.
THOROUGH_EVERY = 3


@dataclass
class _EmbedState:
    """What EmbeddingScheduler knows about one track."""

    tried_at: float     # stamp of the latest selection [s]
    embedded_at: float  # stamp of the latest usable face, or of a failed refresh [s]
    area: float         # box area of the latest usable face [px^2]; 0 if none yet
    quality: float      # quality of the latest usable face [0..1]; 0 if none yet
    seen_at: float      # latest stamp the track was passed to select() [s]
    selected_area: float = 0.0  # box area at the latest selection [px^2]
    misses: int = 0  # attempts in a row that found no usable face
    search: FaceSearch = FaceSearch.FAST  # how far the latest selection searches
    thorough_found: bool = False  # the latest usable face came from a thorough search
    # The latest selection searches thoroughly because the rate is slow, not because the
    # fast detector missed: a face it finds may be one the fast detector finds too.
    slow_try: bool = False


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


class EmbeddingScheduler:
    """Choose which tracks get a face embedding in a frame, at most max_per_frame.

    Priorities:
    1. tracks that have no usable face yet (none of quality usable_quality or more), then
       tracks whose identity is still pending (person_id ''; a decision may need a second
       face), in question (their latest face contradicted their person: a second one splits
       the track, so a swap at a crossing is undone sooner), named with no face compared on
       them (match_similarity 0: re-linked by motion, found again after a miss, or their
       faces were set aside because their box overlapped another; the crossing clip's Mayer,
       whose box lay inside one over her and Musk, had a face tried while that box lasted,
       then none in the 2 s after it went) or showing a person another track shows too (a
       part of them, or ByteTrack carried the track onto someone else: sizes_720p at 6/s,
       Clooney's id on Musk for 1.3 s): tried again after retry_s, not refresh_s, because a
       face not found in one frame (turned away, blurred) may be there in the next; after a
       miss the wait is doubled; pending tracks first, then the longest untried, then the
       largest box;
    2. tracks whose box grew by better_box_ratio since their last usable face (a bigger face
       is a better face), largest growth first;
    3. tracks without a new face for refresh_s, poorest face first.
    A selected track counts as tried from the moment it is selected, so a slow face node is not
    asked twice; record() tells what the attempt gave; search() says how far each attempt
    looks (FaceSearch; see THOROUGH_EVERY). Tracks not passed to select() for refresh_s are
    forgotten, and every track at a stamp more than refresh_s before the latest: time went
    back (a replay looped), the tracker restarted its track ids, and attempts stamped in what
    is now the future would keep those tracks from being tried until time caught up.
    """

    def __init__(self, refresh_s: float = 2.0, better_box_ratio: float = 1.3,
                 max_per_frame: int = 4, retry_s: float = 0.25,
                 usable_quality: float = MIN_DECISION_QUALITY) -> None:
        """Set the periods [s], box growth factor (> 1), budget (>= 1) and usable quality."""
        for name, value in (('refresh_s', refresh_s), ('retry_s', retry_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be >= 0 s, got {value}')
        if refresh_s <= 0:
            raise ValueError(f'refresh_s must be > 0 s, got {refresh_s}')
        if not better_box_ratio > 1:
            raise ValueError(f'better_box_ratio must be > 1, got {better_box_ratio}')
        if max_per_frame < 1:
            raise ValueError(f'max_per_frame must be >= 1, got {max_per_frame}')
        if not 0 <= usable_quality <= 1:
            raise ValueError(f'usable_quality must be in [0, 1], got {usable_quality}')
        self._refresh_s = refresh_s
        self._retry_s = retry_s
        self._better_box_ratio = better_box_ratio
        self._max_per_frame = max_per_frame
        self._usable_quality = usable_quality
        self._tracks: dict[int, _EmbedState] = {}
        self._latest = -math.inf  # stamp of the latest select() [s]

    def select(self, stamp: float, persons: Sequence[TrackedPerson]) -> list[int]:
        """Return the track ids to embed now, at most max_per_frame, most useful first."""
        if stamp < self._latest - self._refresh_s:
            self._tracks.clear()
            self._latest = -math.inf
        missing, grown, stale = [], [], []
        shown = Counter(person.person_id for person in persons if person.person_id)
        for person in persons:
            area = _area(person.box)
            state = self._tracks.get(person.track_id)
            if state is None:
                state = self._tracks[person.track_id] = _EmbedState(
                    -math.inf, -math.inf, 0.0, 0.0, stamp)
            state.seen_at = stamp
            faceless = state.quality < self._usable_quality
            questioned = person.match_similarity != 0 and (
                person.match_similarity < CONTRADICTION_MAX_SIMILARITY)
            unconfirmed = person.person_id != '' and (
                person.match_similarity == 0 or shown[person.person_id] > 1)
            if faceless or person.person_id == '' or questioned or unconfirmed:
                if stamp - state.tried_at >= self._retry_period(state):
                    missing.append((not faceless, person.person_id != '', state.tried_at,
                                    -area, person.track_id))
            elif area >= self._better_box_ratio * max(state.area, 1.0):
                grown.append((-area / max(state.area, 1.0), person.track_id))
            elif stamp - state.embedded_at >= self._refresh_s:
                stale.append((state.quality, state.embedded_at, person.track_id))
        needed = {p[-1] for p in missing}
        slow = math.isfinite(self._latest) and stamp - self._latest >= SLOW_INTERVAL_S
        self._latest = stamp
        chosen = [p[-1] for p in sorted(missing) + sorted(grown) + sorted(stale)]
        chosen = chosen[:self._max_per_frame]
        areas = {p.track_id: _area(p.box) for p in persons}
        for track_id in chosen:
            state = self._tracks[track_id]
            state.tried_at, state.selected_area = stamp, areas[track_id]
            needs_face = track_id in needed
            state.slow_try = False
            if needs_face and state.thorough_found or (
                    state.misses % THOROUGH_EVERY == THOROUGH_EVERY - 1):
                state.search = FaceSearch.THOROUGH
            elif needs_face and slow and state.quality < self._usable_quality:
                state.search, state.slow_try = FaceSearch.THOROUGH, True
            else:
                state.search = FaceSearch.CLOSE_UP if needs_face else FaceSearch.FAST
        self._tracks = {tid: s for tid, s in self._tracks.items()
                        if stamp - s.seen_at < self._refresh_s}
        return chosen

    def _retry_period(self, state: _EmbedState) -> float:
        """Return how long after an attempt a track without a usable face is tried again [s].

        retry_s after a usable face, twice that after a miss: someone turned away for long is
        searched half as often (on the street clip, whose faces are too small to find, these
        searches were most of the face node's CPU). Waiting longer still lost faces: in
        test_everyone_in_view_for_a_second_gets_a_face, doubling per miss up to 1 s covered
        90-93 % of the crowds, up to 0.5 s 96-98 %, and retry_s alone 99-100 %.
        """
        return self._retry_s * (2 if state.misses else 1)

    def search(self, track_id: int) -> FaceSearch:
        """Return how far the attempt selected for track_id should search for its face."""
        state = self._tracks.get(track_id)
        return FaceSearch.FAST if state is None else state.search

    def record(self, track_id: int, stamp: float, quality: float,
               box: np.ndarray | None = None) -> None:
        """Note what embedding track_id's face from the frame at stamp gave.

        quality is 0 when no face was found. A usable face (usable_quality or better) sets the
        baseline of better_box_ratio to box, the person box the face was found in (by
        default the box the track was selected with).
        """
        state = self._tracks.get(track_id)
        if state is None:
            return
        state.misses = 0 if quality >= self._usable_quality else state.misses + 1
        if quality >= self._usable_quality:
            state.thorough_found = state.search is FaceSearch.THOROUGH and not state.slow_try
            state.embedded_at, state.quality = max(state.embedded_at, stamp), quality
            state.area = _area(box) if box is not None else state.selected_area
        elif state.quality >= self._usable_quality:
            # A refresh that found no better face waits refresh_s again.
            state.embedded_at = max(state.embedded_at, stamp)


def embed_scheduled(scheduler: EmbeddingScheduler, analyzer: FaceAnalyzer, image_bgr: np.ndarray,
                    track_id: int, stamp: float, box: np.ndarray,
                    others: Sequence[np.ndarray] = ()) -> Face | None:
    """Find and embed the face of a track the scheduler selected, and record the outcome.

    others: the boxes of the image's other persons (FaceAnalyzer.face_in_person).
    """
    face = analyzer.face_in_person(image_bgr, box, scheduler.search(track_id), others)
    scheduler.record(track_id, stamp, face.quality if face else 0.0, box)
    return face
