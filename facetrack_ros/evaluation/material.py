"""The evaluation's clips by name, with their truth, and its detector model (ROS-free).

Shared by the graph evaluation (scripts/eval_identity.py) and the tracker replay
(scripts/replay_tracker.py), so that both measure the same clips against the same truth.
"""

from pathlib import Path
from typing import NamedTuple

from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.evaluation.clips import ClipTruth, compose
from facetrack_ros.evaluation.identity import Truth
from facetrack_ros.evaluation.scenes import SCENES
from facetrack_ros.evaluation.shared_clips import hamilton, pedestrians

#: The clips evaluated by default (short is the test suite's).
DEFAULT_CLIPS = ('hamilton', 'pedestrians', 'doorway', 'alone', 'crossing', 'sizes_360p',
                 'sizes_720p')


class ClipMaterial(NamedTuple):
    """A clip to evaluate: video, truth, frame rate [Hz] and length [frames].

    coded: frame numbers are drawn into its frames (composed clips).
    """

    video: Path
    truth: Truth
    fps: float
    frames: int
    coded: bool


def clip_material(name: str, shared: Path, cache: Path, work: Path) -> ClipMaterial:
    """Return the clip called name: a shared one (hamilton, pedestrians) or a composed scene.

    Composed clips are made at first use and kept in cache / 'eval_clips'; work holds the
    shared clips' derived files. Raises SystemExit naming the choices for an unknown name.
    """
    if name == 'hamilton':
        clip = hamilton(shared)
    elif name == 'pedestrians':
        clip = pedestrians(shared, work / 'shared_clips')
    else:
        if name not in SCENES:
            raise SystemExit(f'unknown clip {name!r}; choose from '
                             f'{", ".join(("hamilton", "pedestrians", *SCENES))}')
        composed = compose(SCENES[name], shared, cache / 'eval_clips')
        truth = Truth.from_clip(ClipTruth.read(composed.truth))
        return ClipMaterial(composed.video, truth, truth.fps, len(truth.frames), True)
    return ClipMaterial(clip.video, clip.truth, clip.truth.fps, clip.frames, False)


def model_path(choice: str, shared: Path, cache: Path) -> str:
    """Return the detector model: float (rebuild of the shared int8 ONNX), int8, or a path."""
    onnx = shared / 'models' / 'yolov8n_int8.onnx'
    if choice == 'float':
        return str(cached_float_model(onnx, cache / 'models'))
    if choice == 'int8':
        return str(onnx)
    return choice
