"""The one contact point with ultralytics' BYTETracker (ultralytics==8.4.190 is pinned).

BYTETracker.update() is public; so are the attributes its class docstring lists, of which this
module uses four: `max_frames_lost` (written: ByteTrack counts its buffer in frames, PersonTracker
in seconds of the measured frame rate), `tracked_stracks` and `lost_stracks` (read: which
tracks ByteTrack may still report) and `frame_id`; and of the tracks (STrack's docstring) it
reads `is_activated`, `frame_id`, `track_id` and `idx` (the tracks a frame started, not yet
confirmed). test/core/test_tracking.py checks that each still behaves as used here, so that a
renamed attribute fails loudly instead of silently doing nothing.
"""

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from ultralytics.trackers.byte_tracker import BYTETracker


@dataclass(frozen=True)
class ByteTrackSettings:
    """BYTETracker's thresholds, as in ultralytics' bytetrack.yaml."""

    track_high_thresh: float
    track_low_thresh: float
    new_track_thresh: float
    match_thresh: float
    fuse_score: bool


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


class ByteTrackMotion:
    """ByteTrack (Kalman motion and IoU) over person boxes; track ids are ByteTrack's own."""

    def __init__(self, settings: ByteTrackSettings, buffer_frames: int) -> None:
        """Start with no tracks; lost tracks are kept for buffer_frames frames."""
        self._byte = BYTETracker(SimpleNamespace(
            track_high_thresh=settings.track_high_thresh,
            track_low_thresh=settings.track_low_thresh,
            new_track_thresh=settings.new_track_thresh, match_thresh=settings.match_thresh,
            fuse_score=settings.fuse_score, track_buffer=buffer_frames))

    def set_buffer_frames(self, frames: int) -> None:
        """Keep lost tracks for this many frames from now on (>= 1)."""
        self._byte.max_frames_lost = max(1, int(frames))

    def update(self, boxes: np.ndarray, confidences: np.ndarray, confirm_new: bool = False
               ) -> list[tuple[int, int]]:
        """Track one frame's boxes (N, 4) x1, y1, x2, y2 [px]; return (track id, box index).

        ByteTrack confirms a new track on its second frame (or at once in the very first frame)
        and reports only confirmed ones; confirm_new: report the tracks this frame started too.
        """
        xywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
        rows = self._byte.update(_Boxes(confidences, xywh, np.zeros_like(confidences)))
        matched = [(int(row[4]), int(row[7])) for row in rows.reshape(-1, 8)]
        if confirm_new:
            matched += [(int(t.track_id), int(t.idx)) for t in self._byte.tracked_stracks
                        if not t.is_activated and t.frame_id == self._byte.frame_id]
        return matched

    def live_ids(self) -> set[int]:
        """Return the ids of the tracks ByteTrack may still report: tracked or lost."""
        return {t.track_id for t in self._byte.tracked_stracks + self._byte.lost_stracks}

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._byte.reset()
