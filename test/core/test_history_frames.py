"""FrameHistory.frames: the stored frames GetFrames asks for, checked and bounded."""

from pathlib import Path

import pytest

from facetrack_ros.core.history import FrameHistory, FrameQuery, MAX_FRAMES_PER_CALL
from facetrack_ros.core.history.frame_history import MAX_TOLERANCE_S
from facetrack_ros.core.history.inputs import InputRefused
from history_material import CAMERA, record, S

T0 = 1_750_000_000 * S


def test_frames_nearest_or_a_bounded_spread_and_bad_queries_refused(tmp_path: Path) -> None:
    """Nearest within a tolerance; a range at most MAX_FRAMES_PER_CALL; bad fields refused."""
    with FrameHistory(tmp_path / 'history', background=False) as history:
        stamps = record(history, T0, 15.0, {})   # 150 frames at 10 Hz
        history.flush()
        (nearest,) = history.frames(FrameQuery(stamps[40] + S // 50, tolerance_s=0.05))
        assert nearest.stamp_ns == stamps[40] and nearest.camera_id == CAMERA
        assert history.frames(FrameQuery(stamps[-1] + S, tolerance_s=0.5)) == []
        every = history.frames(FrameQuery(T0, stamps[-1]))
        assert len(every) == MAX_FRAMES_PER_CALL < len(stamps)
        assert [f.stamp_ns for f in every] == sorted(f.stamp_ns for f in every)
        assert len(history.frames(FrameQuery(T0, stamps[-1], limit=7))) == 7
        assert len(history.frames(FrameQuery(T0, stamps[-1], limit=10 ** 6))) == \
            MAX_FRAMES_PER_CALL
        assert history.frames(FrameQuery(T0, stamps[-1], camera_id='other')) == []
        for bad, reason in ((FrameQuery(T0 + S, T0), 'end is before start'),
                            (FrameQuery(T0, tolerance_s=MAX_TOLERANCE_S + 1), 'tolerance'),
                            (FrameQuery(T0, tolerance_s=float('nan')), 'tolerance'),
                            (FrameQuery(T0, camera_id=7), 'camera_id')):
            with pytest.raises(InputRefused, match=reason):
                history.frames(bad)
