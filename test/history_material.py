"""Material for the history's fault tests: real messages, recorded histories, mounts.

Messages are rclpy messages serialized to CDR as the frame_history node does; a recorded
history holds frames, identified faces (with real-looking unit embeddings) and person events
written through the same calls as the node. mounted_tmpfs() and read_only_bind() need root and
mount(8); mount_problem() says why they cannot be used here (the tests then skip with it).
"""

from contextlib import contextmanager
import os
from pathlib import Path
import subprocess
from typing import Iterator

import cv2
import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

from facetrack_ros.core.history import (COMPRESSED_IMAGE_TYPE, FrameHistory,
                                        message_definition, SerializedMessage)
from facetrack_ros.core.history.inputs import faces_to_entries
from facetrack_ros.msg import PersonDetection, PersonDetectionArray, PersonEvent

S = 10 ** 9
FACES_TYPE = 'facetrack_ros/msg/PersonDetectionArray'
EVENTS_TYPE = 'facetrack_ros/msg/PersonEvent'
CAMERA = 'hall'
DEFINITIONS = {name: message_definition(name)
               for name in (COMPRESSED_IMAGE_TYPE, FACES_TYPE, EVENTS_TYPE)}


def jpeg(seed: int = 1, shape: tuple[int, int] = (240, 320)) -> bytes:
    """Return a real JPEG of noise (about 90 KB at 320x240, like a busy camera frame)."""
    image = np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', image)[1].tobytes()


def unit(rng: np.random.Generator, dim: int = 128) -> np.ndarray:
    """Return a random unit embedding."""
    vector = rng.normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def frame(stamp_ns: int, data: bytes) -> CompressedImage:
    """Return a CompressedImage of data stamped stamp_ns."""
    message = CompressedImage(format='jpeg', data=data)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, S)
    message.header.frame_id = 'hall_optical'
    return message


def faces(stamp_ns: int, people: dict[str, np.ndarray],
          box: tuple[float, float, float, float] = (100.0, 40.0, 180.0, 230.0)
          ) -> PersonDetectionArray:
    """Return identified_faces with one face per person (embedding given), boxes side by side."""
    message = PersonDetectionArray(image_width=320, image_height=240)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, S)
    for number, (person, embedding) in enumerate(people.items()):
        shift = 100.0 * number
        x1, y1, x2, y2 = box
        message.detections.append(PersonDetection(
            box=[x1 + shift, y1, x2 + shift, y2], confidence=0.9, track_id=number + 1,
            person_id=person, has_face=True,
            face_box=[x1 + shift + 20, y1 + 5, x2 + shift - 20, y1 + 60], face_quality=0.7,
            embedding=embedding.tolist(), embedding_model='dlib_resnet_v1'))
    return message


def event(stamp_ns: int, person: str, kind: int = PersonEvent.PERSON_IN) -> PersonEvent:
    """Return a person event of person stamped stamp_ns."""
    message = PersonEvent(kind=kind, person_id=person, track_id=1, robot_id='r1',
                          camera_id=CAMERA, box=[100.0, 40.0, 180.0, 230.0], confidence=0.9)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, S)
    return message


def serialized(topic: str, type_name: str, message, stamp_ns: int) -> SerializedMessage:
    """Return message serialized by rclpy, as the node hands it to the store."""
    return SerializedMessage(topic, type_name, DEFINITIONS[type_name],
                             bytes(serialize_message(message)), stamp_ns)


def record(history: FrameHistory, start_ns: int, seconds: float, people: dict[str, np.ndarray],
           fps: float = 10.0, face_every: int = 5, data: bytes | None = None,
           flush_every: int = 10) -> list[int]:
    """Record frames at fps with people's faces every face_every frames, as the node does.

    Flushes every flush_every frames (the node's timer); returns the frame stamps.
    """
    data = jpeg() if data is None else data
    stamps = [start_ns + int(k * S / fps) for k in range(int(seconds * fps))]
    for number, stamp in enumerate(stamps):
        history.store.add_frame(CAMERA, serialized('/hall/image_raw/compressed',
                                                   COMPRESSED_IMAGE_TYPE, frame(stamp, data),
                                                   stamp), data, 'hall_optical')
        if number % face_every == 0 and people:
            message = faces(stamp, people)
            segment = history.store.write(CAMERA, serialized('/hall/identified_faces',
                                                             FACES_TYPE, message, stamp))
            for entry in faces_to_entries(message, history.robot_id, CAMERA, 128, segment,
                                          stamp)[0]:
                history.index.add(entry)
        if number % flush_every == flush_every - 1:
            history.flush()
    return stamps


def mount_problem() -> str | None:
    """Return why this process cannot mount file systems for the tests, or None."""
    if os.geteuid() != 0:
        return 'mounting a tmpfs or a read-only bind needs root'
    probe = Path('/proc/self/mountinfo')
    if not probe.exists():
        return 'no /proc/self/mountinfo'
    return None


def _mount(*arguments: str) -> None:
    done = subprocess.run(['mount', *arguments], capture_output=True, text=True, check=False)
    if done.returncode:
        raise OSError(f'mount {" ".join(arguments)}: {done.stderr.strip()}')


def _unmount(path: Path) -> None:
    if subprocess.run(['umount', str(path)], capture_output=True, check=False).returncode:
        subprocess.run(['umount', '-l', str(path)], capture_output=True, check=False)


@contextmanager
def mounted_tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of size_bytes on path (created) for the body: a disk that fills up."""
    path.mkdir(parents=True, exist_ok=True)
    _mount('-t', 'tmpfs', '-o', f'size={size_bytes},mode=0700', 'tmpfs', str(path))
    try:
        yield path
    finally:
        _unmount(path)


def resize_tmpfs(path: Path, size_bytes: int) -> None:
    """Grow or shrink a tmpfs mounted by mounted_tmpfs: space returns (or goes)."""
    _mount('-o', f'remount,size={size_bytes}', str(path))


@contextmanager
def read_only_bind(path: Path) -> Iterator[Path]:
    """Make path read-only for the body (a read-only bind mount of itself; root ignores modes)."""
    _mount('--bind', str(path), str(path))
    try:
        _mount('-o', 'remount,bind,ro', str(path))
        yield path
    finally:
        _unmount(path)


def fill(path: Path) -> Path:
    """Fill the file system of path to the last byte with a file; return it (delete to free)."""
    filler = path / 'filler'
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(descriptor, b'\0' * size)
            except OSError:
                continue
    finally:
        os.close(descriptor)
    return filler
