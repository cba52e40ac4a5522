"""ByteTrack over person boxes: Kalman motion and two rounds of IoU matching, numpy only.

ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box", ECCV 2022) as ultralytics 8.4's BYTETracker runs it, which the tracker used until this
module replaced it: the same track states, thresholds, association order, Kalman filter and
assignment solver (lap), so that both give the same tracks frame for frame
(test/core/test_bytetrack.py runs them side by side). Importing ultralytics imports torch,
about 0.5 GiB resident: too much for a tracker node whose algorithm needs numpy alone.

A track is Tracked (matched in the latest frame), Lost (kept buffer_frames frames to be found
again) or Removed; a box that starts one is unconfirmed until its second box, except in the
very first frame. Each frame:

1. split the boxes by confidence: high (>= track_high_thresh) and low (in between that and
   track_low_thresh, exclusive);
2. predict the confirmed and lost tracks one frame on (a lost track's height stops changing);
3. match them to the high boxes at a cost of 1 - IoU (with fuse_score, IoU times the box's
   confidence) up to match_thresh;
4. match the confirmed tracks still unmatched to the low boxes (IoU at least 0.5); the
   confirmed tracks left are lost;
5. match the unconfirmed tracks to the high boxes left (cost up to 0.7); those left out are
   removed: a single box is no track;
6. start a track on each high box left whose confidence reaches new_track_thresh;
7. remove the tracks lost longer than buffer_frames, and of a tracked and a lost track on one
   box (IoU above 0.85) the younger.

As in ByteTrack's own code, a track removed in step 7 stays among the lost ones for one more
frame, where step 3 may still find it again.
"""

from collections import deque
from dataclasses import dataclass
import enum
import itertools

import lap
import numpy as np


@dataclass(frozen=True)
class ByteTrackSettings:
    """ByteTrack's thresholds, as in ultralytics' bytetrack.yaml."""

    track_high_thresh: float
    track_low_thresh: float
    new_track_thresh: float
    match_thresh: float
    fuse_score: bool


class TrackState(enum.Enum):
    """Where a track stands."""

    NEW = 0       # a box not yet started as a track
    TRACKED = 1   # matched in the latest frame
    LOST = 2      # unmatched, kept to be found again
    REMOVED = 3   # dropped for good


#: IoU distance (1 - IoU) limits of step 4 (low boxes) and step 5 (unconfirmed tracks).
LOW_BOX_MAX_DISTANCE = 0.5
UNCONFIRMED_MAX_DISTANCE = 0.7
#: A tracked and a lost track closer than this IoU distance are one person twice (step 7).
DUPLICATE_MAX_DISTANCE = 0.15
#: Removed track ids remembered, so that a lost list never takes one back (ByteTrack's own).
REMOVED_MEMORY = 1000

# Kalman filter over (centre x, centre y, aspect w/h, height) and their velocities per frame:
# constant velocity; noise proportional to the height, as in ByteTrack (and DeepSORT).
_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)
_POSITION_NOISE = 1.0 / 20
_VELOCITY_NOISE = 1.0 / 160


def _initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the state of a new track at the box xyah: no velocity, wide uncertainty."""
    measurement = np.asarray(xyah, dtype=np.float64)
    height = measurement[3]
    std = [2 * _POSITION_NOISE * height, 2 * _POSITION_NOISE * height, 1e-2,
           2 * _POSITION_NOISE * height, 10 * _VELOCITY_NOISE * height,
           10 * _VELOCITY_NOISE * height, 1e-5, 10 * _VELOCITY_NOISE * height]
    return np.r_[measurement, np.zeros_like(measurement)], np.diag(np.square(std))


def _predict(means: np.ndarray, covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the states (N, 8) and (N, 8, 8) one frame on."""
    heights = means[:, 3]
    std = np.stack([_POSITION_NOISE * heights, _POSITION_NOISE * heights,
                    1e-2 * np.ones_like(heights), _POSITION_NOISE * heights,
                    _VELOCITY_NOISE * heights, _VELOCITY_NOISE * heights,
                    1e-5 * np.ones_like(heights), _VELOCITY_NOISE * heights])
    noise = np.zeros((len(heights), 8, 8))
    noise[:, range(8), range(8)] = np.square(std).T
    ahead = np.dot(_MOTION, covariances).transpose((1, 0, 2))
    return np.dot(means, _MOTION.T), np.dot(ahead, _MOTION.T) + noise


def _correct(mean: np.ndarray, covariance: np.ndarray, xyah: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Return the state corrected by the measured box xyah."""
    height = mean[3]
    std = [_POSITION_NOISE * height, _POSITION_NOISE * height, 1e-1, _POSITION_NOISE * height]
    projected = covariance[:4, :4] + np.diag(np.square(std))
    gain = np.linalg.solve(projected, covariance[:, :4].T).T
    return (mean + np.dot(xyah - mean[:4], gain.T),
            covariance - np.linalg.multi_dot((gain, projected, gain.T)))


class _Track:
    """One track, or a box that may start one (state NEW)."""

    def __init__(self, tlwh: np.ndarray, score: float, index: int) -> None:
        self.box_tlwh = tlwh   # float32 left, top, width, height of the box it came from [px]
        self.score, self.index = score, index
        self.track_id = 0
        self.state = TrackState.NEW
        self.confirmed = False
        self.mean = self.covariance = None
        self.frame_id = self.start_frame = 0

    def xyah(self) -> np.ndarray:
        """Return the box as centre x, centre y, aspect (w / h), height (float32)."""
        xyah = self.box_tlwh.copy()
        xyah[:2] += xyah[2:] / 2
        xyah[2] /= xyah[3]
        return xyah

    def xyxy(self) -> np.ndarray:
        """Return the filter's box (or a NEW one's own box) as x1, y1, x2, y2 [px]."""
        if self.mean is None:
            box = self.box_tlwh.copy()
        else:
            box = self.mean[:4].copy()
            box[2] *= box[3]
            box[:2] -= box[2:] / 2
        box[2:] += box[:2]
        return box

    def start(self, track_id: int, frame_id: int) -> None:
        """Make this box a track (confirmed at once in the very first frame)."""
        self.track_id = track_id
        self.mean, self.covariance = _initiate(self.xyah())
        self.state = TrackState.TRACKED
        self.confirmed = frame_id == 1
        self.frame_id = self.start_frame = frame_id

    def take(self, box: '_Track', frame_id: int) -> None:
        """Follow the track to box (matched this frame): it is then tracked and confirmed."""
        self.mean, self.covariance = _correct(self.mean, self.covariance, box.xyah())
        self.state = TrackState.TRACKED
        self.confirmed = True
        self.frame_id = frame_id
        self.score, self.index = box.score, box.index


def _iou_distance(tracks: list[_Track], boxes: list[_Track]) -> np.ndarray:
    """Return 1 - IoU of every track with every box (float32, as ultralytics computes it)."""
    if not tracks or not boxes:
        return np.ones((len(tracks), len(boxes)), dtype=np.float32)
    a = np.ascontiguousarray([t.xyxy() for t in tracks], dtype=np.float32)
    b = np.ascontiguousarray([t.xyxy() for t in boxes], dtype=np.float32)
    inter = ((np.minimum(a[:, None, 2], b[:, 2]) - np.maximum(a[:, None, 0], b[:, 0])).clip(0)
             * (np.minimum(a[:, None, 3], b[:, 3]) - np.maximum(a[:, None, 1], b[:, 1])).clip(0))
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return 1 - inter / (area_b + area_a[:, None] - inter + 1e-7)


def _assign(cost: np.ndarray, limit: float
            ) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Return the cheapest one-to-one (row, column) pairs, and the rows and columns left.

    A pair costs at most limit; the rows and columns left come in ascending order.
    """
    if cost.size == 0:
        return [], np.arange(cost.shape[0]), np.arange(cost.shape[1])
    _, rows, columns = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    return ([(row, column) for row, column in enumerate(rows) if column >= 0],
            np.flatnonzero(rows < 0), np.flatnonzero(columns < 0))


def _follow(tracks: list[_Track], boxes: list[_Track], cost: np.ndarray, limit: float,
            frame: int, taken: list[_Track], unmatched_state: TrackState,
            unmatched: list[_Track]) -> np.ndarray:
    """Let each track take its box of the cheapest assignment (appended to taken).

    The tracks left get unmatched_state (appended to unmatched); return the boxes left.
    """
    matches, tracks_left, boxes_left = _assign(cost, limit)
    for row, column in matches:
        tracks[row].take(boxes[column], frame)
        taken.append(tracks[row])
    for row in tracks_left:
        tracks[row].state = unmatched_state
        unmatched.append(tracks[row])
    return boxes_left


def _without(tracks: list[_Track], ids: set[int]) -> list[_Track]:
    return [t for t in tracks if t.track_id not in ids]


def _joined(first: list[_Track], second: list[_Track]) -> list[_Track]:
    """Return first, then the tracks of second whose ids first lacks."""
    return first + _without(second, {t.track_id for t in first})


class ByteTrackMotion:
    """ByteTrack (Kalman motion and IoU) over person boxes; track ids are ByteTrack's own."""

    def __init__(self, settings: ByteTrackSettings, buffer_frames: int) -> None:
        """Start with no tracks; lost tracks are kept for buffer_frames frames."""
        self._settings = settings
        self._buffer_frames = buffer_frames
        self.reset()

    def set_buffer_frames(self, frames: int) -> None:
        """Keep lost tracks for this many frames from now on (>= 1)."""
        self._buffer_frames = max(1, int(frames))

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._tracked: list[_Track] = []   # confirmed or not, matched in the latest frame
        self._lost: list[_Track] = []
        self._removed_ids: deque[int] = deque(maxlen=REMOVED_MEMORY)
        self._frame_id = 0
        self._ids = itertools.count(1)

    def live_ids(self) -> set[int]:
        """Return the ids of the tracks ByteTrack may still report: tracked or lost."""
        return {t.track_id for t in self._tracked + self._lost}

    def update(self, boxes: np.ndarray, confidences: np.ndarray, confirm_new: bool = False
               ) -> list[tuple[int, int]]:
        """Track one frame's boxes (N, 4) x1, y1, x2, y2 [px]; return (track id, box index).

        Only confirmed tracks are reported; confirm_new: report the tracks this frame
        started too.
        """
        self._frame_id += 1
        frame, settings = self._frame_id, self._settings
        # 1. High and low boxes, as tracks to be (an empty box would break the filter).
        xywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]],
                              1).astype(np.float64)
        tlwh = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, 2:]], 1).astype(np.float32)
        valid = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
        high = valid & (confidences >= settings.track_high_thresh)
        low = (valid & (confidences > settings.track_low_thresh)
               & (confidences < settings.track_high_thresh))
        high_boxes = [_Track(tlwh[i], confidences[i], int(i)) for i in np.flatnonzero(high)]
        low_boxes = [_Track(tlwh[i], confidences[i], int(i)) for i in np.flatnonzero(low)]
        unconfirmed = [t for t in self._tracked if not t.confirmed]
        pool = _joined([t for t in self._tracked if t.confirmed], self._lost)
        # 2. Predict.
        if pool:
            means = np.asarray([t.mean for t in pool])
            means[np.array([t.state != TrackState.TRACKED for t in pool]), 7] = 0
            means, covariances = _predict(means, np.asarray([t.covariance for t in pool]))
            for track, mean, covariance in zip(pool, means, covariances):
                track.mean, track.covariance = mean, covariance
        # 3. Confirmed and lost tracks with the high boxes.
        taken, found_again, lost_now, removed_now = [], [], [], []
        matches, pool_left, high_left = _assign(self._cost(pool, high_boxes),
                                                settings.match_thresh)
        for row, column in matches:
            track = pool[row]
            (taken if track.state == TrackState.TRACKED else found_again).append(track)
            track.take(high_boxes[column], frame)
        # 4. Confirmed tracks left with the low boxes; the rest are lost.
        still = [pool[i] for i in pool_left if pool[i].state == TrackState.TRACKED]
        _follow(still, low_boxes, _iou_distance(still, low_boxes), LOW_BOX_MAX_DISTANCE, frame,
                taken, TrackState.LOST, lost_now)
        # 5. Unconfirmed tracks with the high boxes left; unmatched they are removed.
        high_boxes = [high_boxes[i] for i in high_left]
        high_left = _follow(unconfirmed, high_boxes, self._cost(unconfirmed, high_boxes),
                            UNCONFIRMED_MAX_DISTANCE, frame, taken, TrackState.REMOVED,
                            removed_now)
        # 6. New tracks.
        for column in high_left:
            box = high_boxes[column]
            if box.score >= settings.new_track_thresh:
                box.start(next(self._ids), frame)
                taken.append(box)
        # 7. Lost too long; duplicates.
        for track in self._lost:
            if frame - track.frame_id > self._buffer_frames:
                track.state = TrackState.REMOVED
                removed_now.append(track)
        tracked = [t for t in self._tracked if t.state == TrackState.TRACKED]
        self._tracked = _joined(_joined(tracked, taken), found_again)
        lost = _without(self._lost, {t.track_id for t in self._tracked}) + lost_now
        self._lost = _without(lost, set(self._removed_ids))
        self._drop_duplicates()
        self._removed_ids.extend(t.track_id for t in removed_now)
        reported = [(t.track_id, t.index) for t in self._tracked if t.confirmed]
        if confirm_new:
            reported += [(t.track_id, t.index) for t in self._tracked
                         if not t.confirmed and t.frame_id == frame]
        return reported

    def _cost(self, tracks: list[_Track], boxes: list[_Track]) -> np.ndarray:
        """Return the IoU distance of tracks to boxes, fused with the boxes' confidences."""
        cost = _iou_distance(tracks, boxes)
        if self._settings.fuse_score and cost.size:
            cost = 1 - (1 - cost) * np.array([b.score for b in boxes])[None]
        return cost

    def _drop_duplicates(self) -> None:
        """Of a tracked and a lost track on one box, drop the younger (the tracked on a tie)."""
        distance = _iou_distance(self._tracked, self._lost)
        drop_tracked, drop_lost = set(), set()
        for p, q in zip(*np.nonzero(distance < DUPLICATE_MAX_DISTANCE)):
            tracked, lost = self._tracked[p], self._lost[q]
            if tracked.frame_id - tracked.start_frame > lost.frame_id - lost.start_frame:
                drop_lost.add(q)
            else:
                drop_tracked.add(p)
        self._tracked = [t for i, t in enumerate(self._tracked) if i not in drop_tracked]
        self._lost = [t for i, t in enumerate(self._lost) if i not in drop_lost]
