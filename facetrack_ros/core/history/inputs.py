"""What the frame history accepts: every field of every message it stores, checked.

The history records three inputs: frames (sensor_msgs Image or CompressedImage), identified
faces (PersonDetectionArray) and person events (PersonEvent). Each check here takes the message
as rclpy or mcap_ros2 decode it (the same field names; nothing here imports ROS) and raises
InputRefused saying which field is wrong, so the node can refuse it with that reason and count
it. The limits are module constants, listed in the README:

- stamps: seconds in [0, 2**31), nanoseconds below 1e9, and within the node's max_stamp_skew
  of its own clock (stamp_problem);
- texts (ids, frame ids, formats): at most MAX_TEXT_CHARS characters;
- boxes: four finite numbers within +-MAX_COORDINATE_PX, x2 >= x1 and y2 >= y1;
- scores (confidence, face quality) finite in [0, 1], similarities finite in [-1, 1],
  durations finite in [0, MAX_DURATION_S];
- embeddings: empty or exactly dim finite values that can be normalised;
- at most MAX_DETECTIONS detections in one message, images at most MAX_IMAGE_SIDE_PX a side
  and compressed frames at most MAX_COMPRESSED_BYTES, JPEG or PNG by their first bytes.

faces_to_entries turns a checked PersonDetectionArray into index entries; the node (live) and
the index rebuild (from the segments) both use it, so both index exactly the same faces.
"""

import math
from typing import Any, Sequence

import numpy as np

from facetrack_ros.core.history.config import NS_PER_S
from facetrack_ros.core.history.index import IndexEntry
from facetrack_ros.core.history.search import check_embedding, SearchRefused

MAX_TEXT_CHARS = 256
MAX_DETECTIONS = 256
MAX_COORDINATE_PX = 100_000.0
MAX_DURATION_S = 1e9
MAX_IMAGE_SIDE_PX = 16_384
MAX_COMPRESSED_BYTES = 32 * 1024 * 1024
#: The kinds of PersonEvent (PERSON_IN, PERSON_OUT, PERSON_RETURNED).
EVENT_KINDS = frozenset({1, 2, 3})
_MAX_SEC = 2 ** 31
#: First bytes of the compressed formats stored (JPEG, PNG).
_IMAGE_MAGIC = (b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n')


class InputRefused(ValueError):
    """A message the history does not store; the text names the field and why."""


def check_stamp(stamp: Any, what: str = 'header.stamp') -> int:
    """Return a builtin_interfaces/Time as ns, or raise InputRefused for an impossible one."""
    sec, nanosec = getattr(stamp, 'sec', None), getattr(stamp, 'nanosec', None)
    if not (isinstance(sec, int) and isinstance(nanosec, int)):
        raise InputRefused(f'{what} is not a time')
    if not 0 <= sec < _MAX_SEC or not 0 <= nanosec < NS_PER_S:
        raise InputRefused(f'{what} {sec} s {nanosec} ns is not a valid time')
    return sec * NS_PER_S + nanosec


def stamp_problem(stamp_ns: int, now_ns: int, max_skew_s: float) -> str | None:
    """Return why stamp_ns is too far from now_ns (more than max_skew_s; 0: no limit), or None."""
    if max_skew_s <= 0:
        return None
    off_s = (stamp_ns - now_ns) / NS_PER_S
    if abs(off_s) <= max_skew_s:
        return None
    return (f'stamp {stamp_ns / NS_PER_S:.3f} s is {abs(off_s):.1f} s '
            f'{"ahead of" if off_s > 0 else "behind"} the node clock (max_stamp_skew '
            f'{max_skew_s:g} s)')


def check_text(value: Any, what: str) -> str:
    """Return value if it is a string of at most MAX_TEXT_CHARS, else raise InputRefused."""
    if not isinstance(value, str):
        raise InputRefused(f'{what} must be text')
    if len(value) > MAX_TEXT_CHARS:
        raise InputRefused(f'{what} is longer than {MAX_TEXT_CHARS} characters')
    return value


def check_number(value: Any, what: str, low: float, high: float) -> float:
    """Return value as a float if it is finite in [low, high], else raise InputRefused."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputRefused(f'{what} must be a number') from None
    if not (math.isfinite(number) and low <= number <= high):
        raise InputRefused(f'{what} {number} is outside [{low:g}, {high:g}]')
    return number


def check_box(values: Sequence[float], what: str) -> tuple[float, float, float, float]:
    """Return a box x1, y1, x2, y2 [px] if it is four finite ordered numbers in range."""
    box = np.asarray(values, dtype=np.float64).reshape(-1)
    if box.size != 4 or not np.all(np.isfinite(box)):
        raise InputRefused(f'{what} must be 4 finite numbers x1, y1, x2, y2')
    if np.any(np.abs(box) > MAX_COORDINATE_PX):
        raise InputRefused(f'{what} has a coordinate beyond {MAX_COORDINATE_PX:g} px')
    if box[2] < box[0] or box[3] < box[1]:
        raise InputRefused(f'{what} must have x2 >= x1 and y2 >= y1')
    return tuple(float(value) for value in box)


def check_embedding_field(values: Sequence[float], dim: int, what: str) -> np.ndarray | None:
    """Return a unit embedding, None for an empty one; raise InputRefused for a bad one."""
    if len(values) == 0:
        return None
    try:
        return check_embedding(values, dim)
    except SearchRefused as error:
        raise InputRefused(f'{what}: {error}') from None


def check_detection(detection: Any, dim: int) -> np.ndarray | None:
    """Check every field of one PersonDetection; return its unit embedding (None if empty)."""
    check_box(detection.box, 'box')
    check_number(detection.confidence, 'confidence', 0.0, 1.0)
    check_number(detection.track_id, 'track_id', -2 ** 31, 2 ** 31 - 1)
    check_text(detection.person_id, 'person_id')
    check_box(detection.face_box, 'face_box')
    check_number(detection.face_quality, 'face_quality', 0.0, 1.0)
    embedding = check_embedding_field(detection.embedding, dim, 'embedding')
    check_text(detection.embedding_model, 'embedding_model')
    check_number(detection.match_similarity, 'match_similarity', -1.0, 1.0)
    if detection.has_face and detection.person_id and embedding is None:
        raise InputRefused('an identified face needs its embedding')
    return embedding


def check_faces(msg: Any, dim: int) -> tuple[int, list[Any], list[str]]:
    """Check an identified_faces PersonDetectionArray.

    Returns its stamp [ns], the detections that passed and the reasons of those refused
    (one per refused detection, its index first). Raises InputRefused when the message as a
    whole is unusable (header, image size, too many detections).
    """
    stamp_ns = check_stamp(msg.header.stamp)
    check_text(msg.header.frame_id, 'header.frame_id')
    check_number(msg.image_width, 'image_width', 0, MAX_IMAGE_SIDE_PX)
    check_number(msg.image_height, 'image_height', 0, MAX_IMAGE_SIDE_PX)
    if len(msg.detections) > MAX_DETECTIONS:
        raise InputRefused(f'{len(msg.detections)} detections, more than {MAX_DETECTIONS}')
    kept, refused = [], []
    for number, detection in enumerate(msg.detections):
        try:
            check_detection(detection, dim)
        except InputRefused as error:
            refused.append(f'detection {number}: {error}')
            continue
        kept.append(detection)
    return stamp_ns, kept, refused


def check_event(msg: Any, dim: int) -> int:
    """Check every field of a PersonEvent; return its stamp [ns] or raise InputRefused."""
    stamp_ns = check_stamp(msg.header.stamp)
    check_text(msg.header.frame_id, 'header.frame_id')
    if msg.kind not in EVENT_KINDS:
        raise InputRefused(f'kind {msg.kind} is not PERSON_IN, PERSON_OUT or PERSON_RETURNED')
    if not check_text(msg.person_id, 'person_id'):
        raise InputRefused('person_id is empty')
    check_number(msg.track_id, 'track_id', -2 ** 31, 2 ** 31 - 1)
    check_text(msg.robot_id, 'robot_id')
    check_text(msg.camera_id, 'camera_id')
    check_box(msg.box, 'box')
    check_number(msg.confidence, 'confidence', 0.0, 1.0)
    check_number(msg.duration, 'duration', 0.0, MAX_DURATION_S)
    check_embedding_field(msg.embedding, dim, 'embedding')
    return stamp_ns


def check_compressed(msg: Any) -> int:
    """Check a CompressedImage (JPEG or PNG, size capped); return its stamp [ns]."""
    stamp_ns = check_stamp(msg.header.stamp)
    check_text(msg.header.frame_id, 'header.frame_id')
    check_text(msg.format, 'format')
    size = len(msg.data)
    if size > MAX_COMPRESSED_BYTES:
        raise InputRefused(f'compressed frame of {size} bytes, more than '
                           f'{MAX_COMPRESSED_BYTES}')
    head = bytes(msg.data[:8])
    if not any(head.startswith(magic) for magic in _IMAGE_MAGIC):
        raise InputRefused('compressed frame is neither JPEG nor PNG')
    return stamp_ns


def check_raw_header(msg: Any) -> int:
    """Check a raw Image's header and size (its pixels are checked on conversion)."""
    stamp_ns = check_stamp(msg.header.stamp)
    check_text(msg.header.frame_id, 'header.frame_id')
    if max(msg.width, msg.height) > MAX_IMAGE_SIDE_PX:
        raise InputRefused(f'image of {msg.width}x{msg.height} px is larger than '
                           f'{MAX_IMAGE_SIDE_PX} px a side')
    return stamp_ns


def faces_to_entries(msg: Any, robot_id: str, camera_id: str, dim: int, segment: str = '',
                     frame_stamp_ns: int | None = None) -> tuple[list[IndexEntry], list[str]]:
    """Return the index entries of an identified_faces message, and why others were refused.

    An entry is made for each detection with a face, a person id and an embedding, every field
    checked (check_faces); a message whose header is unusable gives no entries and one reason.
    """
    try:
        stamp_ns, detections, refused = check_faces(msg, dim)
    except InputRefused as error:
        return [], [str(error)]
    entries = []
    for detection in detections:
        if not (detection.has_face and detection.person_id):
            continue
        entries.append(IndexEntry(
            stamp_ns=stamp_ns, robot_id=robot_id, camera_id=camera_id,
            person_id=detection.person_id, box=check_box(detection.face_box, 'face_box'),
            quality=float(detection.face_quality),
            embedding=check_embedding_field(detection.embedding, dim, 'embedding'),
            segment=segment, frame_stamp_ns=frame_stamp_ns))
    return entries, refused
