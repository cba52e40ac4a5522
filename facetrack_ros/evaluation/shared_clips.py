"""The shared real videos with their ground truth counted by eye.

hamilton_clip.mp4 (640x360, 29.97 FPS, 275 frames): shots found by frame differences and
checked frame by frame on contact sheets (as in test/test_pipeline_e2e.py): S1 wide stage
0-19 (Lin-Manuel Miranda standing on the right, Alex Lacamoire small at the piano on the left,
a blurred audience head in the foreground, not counted), S2 extreme close-up of Lacamoire in
profile 20-81, S3 Miranda alone 82-210, S4 the audience 211-274 (four clearly identifiable
people, more cut by the frame edges). Boxes of S1 and S2 are where each person stands in
those static shots (read off the frames, about +-10 px); S3 has one person, so any box is
his; S4's people cannot be told apart without boxes, so S4 counts only in the totals. Face
heights: Miranda ~52 px in S1 (0.7 s, too short to count), ~90 px frontal in S3, Lacamoire in
full profile ~150 px in S2 (a face a frontal detector cannot find; it still counts).

pedestrians_vtest.avi, frames 0-199 (480x360, 10 FPS): 9
distinct pedestrians tracked person by person on contact sheets of every 5th frame; none of
them leaves and comes back within these frames. Without per-frame boxes only the counts are
measured here (PERSON_IN per real person; every PERSON_RETURNED is unexpected).
"""

from dataclasses import dataclass
from pathlib import Path

import cv2

from facetrack_ros.evaluation.identity import Shot, Truth, truth_from_shots

HAMILTON_FPS = 29.97
HAMILTON_SHOTS = (
    Shot(0, 19, ('miranda', 'lacamoire'),
         boxes={'miranda': (395.0, 35.0, 605.0, 356.0), 'lacamoire': (15.0, 172.0, 90.0, 245.0)},
         face_px={'miranda': 52.0, 'lacamoire': 15.0}),
    Shot(20, 81, ('lacamoire',), boxes={'lacamoire': (330.0, 0.0, 640.0, 360.0)},
         face_px={'lacamoire': 150.0}),
    Shot(82, 210, ('miranda',), face_px={'miranda': 90.0}),
    Shot(211, 274, ('audience-1', 'audience-2', 'audience-3', 'audience-4')),
)
PEDESTRIAN_FRAMES = 200
PEDESTRIAN_FPS = 10.0
PEDESTRIANS_BY_EYE = 9


@dataclass(frozen=True)
class EyeClip:
    """A shared video (or a part of it written to a work folder) and its by-eye truth."""

    name: str
    video: Path
    truth: Truth
    frames: int


def hamilton(shared_dir: Path) -> EyeClip:
    """Return the Hamilton clip, whole."""
    video = Path(shared_dir) / 'data' / 'video' / 'hamilton_clip.mp4'
    return EyeClip('hamilton', video,
                   truth_from_shots('hamilton', HAMILTON_FPS, 275, HAMILTON_SHOTS), 275)


def pedestrians(shared_dir: Path, work: Path) -> EyeClip:
    """Frames 0-199 of the street video, written once to work as MJPG."""
    clip = Path(work) / f'pedestrians_first_{PEDESTRIAN_FRAMES}.avi'
    if not clip.is_file():
        clip.parent.mkdir(parents=True, exist_ok=True)
        capture = cv2.VideoCapture(str(Path(shared_dir) / 'data' / 'video' /
                                       'pedestrians_vtest.avi'))
        partial = clip.with_name(clip.stem + '.partial.avi')
        writer = None
        for _ in range(PEDESTRIAN_FRAMES):
            ok, frame = capture.read()
            if not ok:
                raise ValueError('the shared street video has fewer than '
                                 f'{PEDESTRIAN_FRAMES} frames')
            if writer is None:
                writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*'MJPG'),
                                         PEDESTRIAN_FPS, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
        writer.release()
        capture.release()
        partial.replace(clip)
    truth = Truth('pedestrians', PEDESTRIAN_FPS, [[] for _ in range(PEDESTRIAN_FRAMES)],
                  [f'pedestrian-{n}' for n in range(1, PEDESTRIANS_BY_EYE + 1)])
    return EyeClip('pedestrians', clip, truth, PEDESTRIAN_FRAMES)
