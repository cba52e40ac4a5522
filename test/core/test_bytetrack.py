"""core.bytetrack: the ByteTrack the tracker runs, frame for frame ultralytics' BYTETracker.

ultralytics (pinned in requirements.txt for the detector) is the reference here only: the
tracker node must not import it, since it imports torch. The scenes are random walkers who
cross, stop, hide, come back and flicker in confidence, and the person boxes YOLOv8n finds
in the shared videos; both trackers see the same boxes and must report the same tracks.
"""

from dataclasses import dataclass
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from facetrack_ros.core.bytetrack import ByteTrackMotion, ByteTrackSettings
from facetrack_ros.core.detection import YoloPersonDetector
from facetrack_ros.core.tracking import TrackerConfig

CONFIG = TrackerConfig()
SETTINGS = ByteTrackSettings(CONFIG.track_high_thresh, CONFIG.track_low_thresh,
                             CONFIG.new_track_thresh, CONFIG.match_thresh, CONFIG.fuse_score)


@dataclass(frozen=True)
class _Boxes:
    """A detection batch as BYTETracker.update reads it (like ultralytics' Boxes)."""

    conf: np.ndarray
    xywh: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> '_Boxes':
        return _Boxes(self.conf[mask], self.xywh[mask], self.cls[mask])


class Reference:
    """ultralytics' BYTETracker behind ByteTrackMotion's interface (the tracker's until now)."""

    def __init__(self, settings: ByteTrackSettings, buffer_frames: int) -> None:
        """Start a BYTETracker with these settings."""
        from ultralytics.trackers.byte_tracker import BYTETracker
        self.byte = BYTETracker(SimpleNamespace(
            track_high_thresh=settings.track_high_thresh,
            track_low_thresh=settings.track_low_thresh,
            new_track_thresh=settings.new_track_thresh, match_thresh=settings.match_thresh,
            fuse_score=settings.fuse_score, track_buffer=buffer_frames))

    def set_buffer_frames(self, frames: int) -> None:
        """Write BYTETracker's max_frames_lost."""
        self.byte.max_frames_lost = max(1, int(frames))

    def update(self, boxes: np.ndarray, confidences: np.ndarray, confirm_new: bool = False
               ) -> list[tuple[int, int]]:
        """Track one frame as ByteTrackMotion.update does."""
        xywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
        rows = self.byte.update(_Boxes(confidences, xywh, np.zeros_like(confidences)))
        matched = [(int(row[4]), int(row[7])) for row in rows.reshape(-1, 8)]
        if confirm_new:
            matched += [(int(t.track_id), int(t.idx)) for t in self.byte.tracked_stracks
                        if not t.is_activated and t.frame_id == self.byte.frame_id]
        return matched

    def live_ids(self) -> set[int]:
        """Return the ids of the tracked and lost tracks."""
        return {t.track_id for t in self.byte.tracked_stracks + self.byte.lost_stracks}

    def reset(self) -> None:
        """Forget every track."""
        self.byte.reset()


def _scene(rng: np.random.Generator, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return random frames of (boxes (N, 4) float32, confidences (N,) float32).

    Walkers enter and leave, cross each other on the same rows, stop, are hidden for a few
    frames, and their confidence flickers across the thresholds; some frames add a faint
    stray box, a box of a group, or a box of no width.
    """
    walkers = []
    for _ in range(rng.integers(1, 7)):
        height = rng.uniform(40, 300)
        start = rng.integers(0, frames)
        walkers.append(dict(
            start=start, end=start + rng.integers(3, frames),
            x=rng.uniform(0, 640), y=rng.uniform(0, 360), w=height * rng.uniform(0.3, 0.6),
            h=height, vx=rng.choice([-1, 1]) * rng.uniform(0, 12), vy=rng.uniform(-2, 2),
            hidden=set(int(f) for f in rng.integers(0, frames, rng.integers(0, frames // 3)))))
    out = []
    for frame in range(frames):
        boxes, confidences = [], []
        for w in walkers:
            if not w['start'] <= frame < w['end'] or frame in w['hidden']:
                continue
            t = frame - w['start']
            x, y = w['x'] + w['vx'] * t, w['y'] + w['vy'] * t
            jitter = rng.normal(0, 0.03 * w['h'], 4)
            boxes.append([x + jitter[0], y + jitter[1], x + w['w'] + jitter[2],
                          y + w['h'] + jitter[3]])
            confidences.append(rng.choice([rng.uniform(0.6, 0.95), rng.uniform(0.3, 0.65)],
                                          p=[0.7, 0.3]))
        if boxes and rng.random() < 0.1:   # a group box over two walkers
            a, b = rng.choice(len(boxes), 2) if len(boxes) > 1 else (0, 0)
            boxes.append(list(np.minimum(boxes[a][:2], boxes[b][:2]))
                         + list(np.maximum(boxes[a][2:], boxes[b][2:])))
            confidences.append(rng.uniform(0.3, 0.7))
        if rng.random() < 0.1:   # a faint stray box
            x, y = rng.uniform(0, 600, 2)
            boxes.append([x, y, x + 30, y + 60])
            confidences.append(rng.uniform(0.1, 0.55))
        if rng.random() < 0.03:   # no width
            boxes.append([100.0, 100.0, 100.0, 200.0])
            confidences.append(0.9)
        out.append((np.asarray(boxes, np.float32).reshape(-1, 4),
                    np.asarray(confidences, np.float32)))
    return out


def _compare(frames: list[tuple[np.ndarray, np.ndarray]], buffer_frames: int,
             rng: np.random.Generator | None = None) -> int:
    """Run both trackers over frames; assert equal reports; return the tracks reported.

    rng: also change the buffer, ask for new tracks and reset now and then, at random.
    """
    ours, theirs = ByteTrackMotion(SETTINGS, buffer_frames), Reference(SETTINGS, buffer_frames)
    reported = set()
    for number, (boxes, confidences) in enumerate(frames):
        confirm_new = False
        if rng is not None:
            if rng.random() < 0.05:
                buffer = int(rng.integers(1, 40))
                ours.set_buffer_frames(buffer)
                theirs.set_buffer_frames(buffer)
            if rng.random() < 0.01:
                ours.reset()
                theirs.reset()
            confirm_new = bool(rng.random() < 0.3)
        mine = ours.update(boxes, confidences, confirm_new)
        assert mine == theirs.update(boxes, confidences, confirm_new), f'frame {number}'
        assert ours.live_ids() == theirs.live_ids(), f'frame {number}'
        reported.update(track for track, _ in mine)
    return len(reported)


def test_random_scenes_give_the_reference_tracks() -> None:
    """300 random scenes of 80 frames: the same tracks, box for box, as BYTETracker."""
    rng = np.random.default_rng(2026)
    tracks = sum(_compare(_scene(rng, 80), int(rng.integers(1, 40)), rng) for _ in range(300))
    assert tracks > 1000, 'the scenes no longer make tracks to compare'


@pytest.mark.parametrize('video', ['pedestrians_vtest.avi', 'hamilton_clip.mp4'])
def test_real_person_boxes_give_the_reference_tracks(shared_dir, video) -> None:
    """YOLOv8n's boxes on a shared video (a street; a stage with cuts): the same tracks."""
    detector = YoloPersonDetector(str(shared_dir / 'models' / 'yolov8n_int8.onnx'),
                                  confidence=0.1, threads=1)
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / video))
    frames = []
    while len(frames) < 120:
        ok, image = capture.read()
        if not ok:
            break
        people = detector.detect(image)
        frames.append((np.asarray([p.box for p in people], np.float32).reshape(-1, 4),
                       np.asarray([p.confidence for p in people], np.float32)))
    capture.release()
    assert len(frames) == 120
    assert _compare(frames, 30) >= 2


def test_lost_tracks_are_kept_for_the_buffer_and_new_ones_confirmed_on_their_second_box(
        ) -> None:
    """The buffer setting reaches the tracker; a new track shows on its second box."""
    lifetimes = {}
    box, conf = np.array([[100, 100, 180, 300]], np.float32), np.array([0.9], np.float32)
    nothing = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    for buffer in (2, 6):
        motion = ByteTrackMotion(SETTINGS, buffer_frames=30)
        motion.set_buffer_frames(buffer)
        assert motion.update(box, conf) == [(1, 0)]
        assert motion.update(box, conf) == [(1, 0)]
        frames = 0
        while 1 in motion.live_ids():  # lost, but kept for finding again
            assert motion.update(*nothing) == []
            frames += 1
        lifetimes[buffer] = frames
        motion.reset()
        assert motion.live_ids() == set()
    # Removed in the update after buffer + 1 lost frames, and dropped one frame later.
    assert lifetimes == {2: 4, 6: 8}
    motion = ByteTrackMotion(SETTINGS, buffer_frames=30)
    other = np.array([[400, 100, 480, 300]], np.float32)
    assert motion.update(box, conf) == [(1, 0)]
    assert motion.update(other, conf) == []
    motion.reset()
    assert motion.update(box, conf) == [(1, 0)]
    assert motion.update(other, conf, confirm_new=True) == [(2, 0)]
    assert motion.update(other, conf) == [(2, 0)]


def test_the_tracker_node_imports_neither_ultralytics_nor_torch(tmp_path) -> None:
    """The tracker's core (and so its node) runs on numpy: torch costs 0.5 GiB resident."""
    code = ('import sys; import facetrack_ros.tracker_node; '
            'print(sorted({"torch", "ultralytics"} & set(sys.modules)))')
    # Run away from the repository, whose source folder lacks the built message modules.
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]', result.stdout
