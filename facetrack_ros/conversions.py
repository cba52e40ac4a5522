"""Message <-> numpy conversions shared by the nodes (cv_bridge is not a dependency)."""

from collections import OrderedDict
import struct
import threading

from builtin_interfaces.msg import Time
import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from facetrack_ros.core.camera import decode_reduced, JPEG_START, reduce_image, SourceError

_CHANNELS = {'bgr8': 3, 'rgb8': 3, 'bgra8': 4, 'rgba8': 4, 'mono8': 1}


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a BGR array; the message says why."""


def check_image(msg: Image) -> int:
    """Return the channels of an Image message image_to_bgr can read; else raise saying why.

    Raises ImageConversionError for an encoding it does not read, no pixels, or data too
    short for its rows.
    """
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageConversionError(
            f'unsupported encoding {msg.encoding!r}; use one of {sorted(_CHANNELS)}')
    if msg.width == 0 or msg.height == 0:
        raise ImageConversionError('image has zero width or height')
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise ImageConversionError(
            f'image data of {len(msg.data)} bytes does not hold {msg.height} rows of step '
            f'{msg.step} for {msg.width}x{msg.height} {msg.encoding}')
    return channels


def image_to_bgr(msg: Image) -> np.ndarray:
    """Return a contiguous HxWx3 uint8 BGR copy of an 8-bit Image message."""
    channels = check_image(msg)
    row_bytes = msg.width * channels
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    pixels = rows.reshape(msg.height, msg.step)[:, :row_bytes].reshape(
        msg.height, msg.width, channels)
    if msg.encoding == 'bgr8':
        return np.ascontiguousarray(pixels)
    conversion = {
        'rgb8': cv2.COLOR_RGB2BGR, 'bgra8': cv2.COLOR_BGRA2BGR,
        'rgba8': cv2.COLOR_RGBA2BGR, 'mono8': cv2.COLOR_GRAY2BGR,
    }[msg.encoding]
    return cv2.cvtColor(pixels, conversion)


def bgr_to_image(image: np.ndarray, header=None) -> Image:
    """Return a bgr8 Image message of an HxWx3 uint8 array, with the given header."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageConversionError(f'expected HxWx3 uint8, got {image.dtype} {image.shape}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = image.shape[:2]
    msg.encoding = 'bgr8'
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def jpeg_to_bgr(data: bytes) -> np.ndarray:
    """Decode JPEG (or PNG) bytes into a BGR array."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageConversionError(f'cannot decode {len(data)} bytes as an image')
    return image


def bgr_to_compressed(image: np.ndarray, header=None, quality: int = 80) -> CompressedImage:
    """Return a JPEG CompressedImage of a BGR array, with the given header."""
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageConversionError(f'JPEG encoding failed for {image.shape}')
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = 'jpeg'
    msg.data = data.tobytes()
    return msg


def camera_info(header, width: int, height: int) -> CameraInfo:
    """Return the CameraInfo of an uncalibrated camera (all-zero K) of width x height [px]."""
    return CameraInfo(header=header, width=width, height=height)


#: CDR encapsulation kinds whose body starts with the first field (plain CDR and XCDR2, big
#: or little endian; the last bit says little endian).
_PLAIN_CDR = (0x00, 0x01, 0x06, 0x07)


def serialized_stamp(data: bytes) -> Time:
    """Return header.stamp of a serialized message whose first field is a std_msgs/Header.

    A node can file a large message (an image) by its stamp this way and deserialise it only
    when it uses it. Raise ImageConversionError for data that is no such message.
    """
    if len(data) < 12 or data[0] != 0 or data[1] not in _PLAIN_CDR:
        raise ImageConversionError(f'{len(data)} bytes are not a plain CDR message')
    sec, nanosec = struct.unpack_from('<iI' if data[1] & 1 else '>iI', data, 4)
    return Time(sec=sec, nanosec=nanosec)


#: Message type and topic suffix of each image transport (image_transport's names).
IMAGE_TRANSPORTS = {'raw': (Image, ''), 'compressed': (CompressedImage, '/compressed')}


def transport_topic(base: str, transport: str) -> tuple[type, str]:
    """Return the message type and topic of an image topic base in transport."""
    msg_type, suffix = IMAGE_TRANSPORTS[transport]
    return msg_type, base + suffix


def message_to_bgr(msg: Image | CompressedImage) -> np.ndarray:
    """Return the BGR pixels of an Image or a (JPEG or PNG) CompressedImage message."""
    return jpeg_to_bgr(msg.data) if isinstance(msg, CompressedImage) else image_to_bgr(msg)


def message_to_reduced_bgr(msg: Image | CompressedImage,
                           longest: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Return an image message's pixels reduced to longest [px] and its full (width, height).

    A JPEG is decoded straight at a reduced scale where it can (core.camera.decode_reduced):
    a reader that needs only a small copy of a full-resolution JPEG never decodes it in full.
    """
    if isinstance(msg, CompressedImage) and bytes(msg.data[:2]) == JPEG_START:
        try:
            return decode_reduced(bytes(msg.data), longest)
        except SourceError as error:
            raise ImageConversionError(str(error)) from None
    image = message_to_bgr(msg)
    return reduce_image(image, longest), (image.shape[1], image.shape[0])


def time_to_sec(stamp: Time) -> float:
    """Return a builtin_interfaces/Time as seconds [s]."""
    return stamp.sec + stamp.nanosec * 1e-9


def time_to_ns(stamp: Time) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def sec_to_time(seconds: float) -> Time:
    """Return seconds [s] as a builtin_interfaces/Time."""
    return ns_to_time(int(round(seconds * 1e9)))


def ns_to_time(nanoseconds: int) -> Time:
    """Return integer nanoseconds as a builtin_interfaces/Time."""
    sec, nanosec = divmod(int(nanoseconds), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


class StampedCache:
    """The latest messages by header stamp, bounded, safe to fill and read from two threads.

    Nodes that pair an image with the tracks of its frame, which arrive as late as the
    detector is slow, keep the recent images here: those of the latest span_s of camera time
    (stamps, not the wall clock: a paused or slowed bag keeps its frames), in at most
    max_bytes. A count bound (size) suits small messages such as CameraInfo.
    """

    def __init__(self, size: int | None = None, *, span_s: float | None = None,
                 max_bytes: int | None = None) -> None:
        """Keep at most size messages, those within span_s [s] of the latest, in max_bytes.

        Each bound is optional; at least one is needed. max_bytes weighs a serialized message
        by its length and an Image or CompressedImage by its data.
        """
        if size is None and span_s is None and max_bytes is None:
            raise ValueError('StampedCache needs a size, span_s or max_bytes bound')
        for name, bound in (('size', size), ('span_s', span_s), ('max_bytes', max_bytes)):
            if bound is not None and not bound > 0:
                raise ValueError(f'StampedCache {name} must be > 0, got {bound}')
        self._size = size
        self._span_ns = None if span_s is None else round(span_s * 1e9)
        self._max_bytes = max_bytes
        self._items: OrderedDict[int, object] = OrderedDict()
        self._bytes = 0
        self._latest_ns: int | None = None
        self._lock = threading.Lock()

    def add(self, msg, stamp: Time | None = None) -> None:
        """Keep msg under stamp (default: its header stamp), dropping the oldest beyond bounds.

        The oldest go while more than size are kept, while they lie more than span_s from this
        stamp, either way, and while the messages weigh more than max_bytes. The message just
        added always stays. A stamp more than span_s before the one added last is a jump back
        in time (a looping bag, a restarted simulation), and the frames from before it go, as
        tf2 clears its buffer on one.
        """
        key = time_to_ns(msg.header.stamp if stamp is None else stamp)
        with self._lock:
            self._forget(key)
            self._items[key] = msg
            self._bytes += self._weight(msg)
            self._latest_ns = key
            while len(self._items) > 1 and self._over_bounds(next(iter(self._items))):
                self._forget(next(iter(self._items)))

    def get(self, stamp: Time, remove: bool = False):
        """Return the message stamped stamp (and forget it when remove), or None."""
        with self._lock:
            key = time_to_ns(stamp)
            msg = self._items.get(key)
            if remove:
                self._forget(key)
            return msg

    def span_s(self) -> float:
        """Return the camera time from the oldest message kept to the latest added [s]."""
        with self._lock:
            if not self._items:
                return 0.0
            return abs(self._latest_ns - next(iter(self._items))) / 1e9

    def latest_s(self) -> float | None:
        """Return the stamp of the message added last [s], or None before any."""
        with self._lock:
            return None if self._latest_ns is None else self._latest_ns / 1e9

    def clear(self) -> None:
        """Forget every message, and the stamp added last."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self._latest_ns = None

    def _over_bounds(self, oldest_ns: int) -> bool:
        return ((self._size is not None and len(self._items) > self._size)
                or (self._span_ns is not None
                    and abs(self._latest_ns - oldest_ns) > self._span_ns)
                or (self._max_bytes is not None and self._bytes > self._max_bytes))

    def _forget(self, key: int) -> None:
        msg = self._items.pop(key, None)
        if msg is not None:
            self._bytes -= self._weight(msg)

    def _weight(self, msg) -> int:
        if self._max_bytes is None:
            return 0
        return len(msg) if isinstance(msg, (bytes, bytearray, memoryview)) else len(msg.data)
