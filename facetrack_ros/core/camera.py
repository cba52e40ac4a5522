"""Frame sources: V4L2 cameras, video files and image folders, plus reconnect backoff."""

import abc
import logging
import math
import threading
from pathlib import Path
import time
from types import TracebackType
from typing import Callable, NoReturn

import cv2
import numpy as np

_LOG = logging.getLogger(__name__)

#: File name endings ImageFolderSource reads (compared lower-case); other files are ignored.
IMAGE_SUFFIXES = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm',
                            '.pgm'})


class Frame:
    """One captured image: its pixels, or the JPEG a Motion-JPEG source delivered.

    stamp: capture time [s since the epoch], taken right after the grab.
    index: position in the source's output, counting from 0 and not reset by looping.
    jpeg: the source's own JPEG of the image (a Motion-JPEG camera or recording), or None.
    A JPEG frame is decoded on first use of image, and reduced() decodes it at a fraction of
    its size where that suffices, so a frame nobody needs at full size is never decoded.
    """

    def __init__(self, stamp: float, index: int, image: np.ndarray | None = None,
                 jpeg: bytes | None = None) -> None:
        """Hold image (HxWx3 uint8 BGR) or jpeg; raise SourceError for an unreadable JPEG."""
        if (image is None) == (jpeg is None):
            raise ValueError('a Frame holds either image or jpeg')
        self.stamp, self.index, self.jpeg = stamp, index, jpeg
        self._image = image
        if image is not None:
            self.width, self.height = image.shape[1], image.shape[0]
        else:
            self.width, self.height = jpeg_size(jpeg)

    @property
    def image(self) -> np.ndarray:
        """Return the HxWx3 uint8 BGR pixels (a JPEG frame is decoded once, here)."""
        if self._image is None:
            self._image = _decode(self.jpeg, cv2.IMREAD_COLOR)
        return self._image

    def reduced(self, longest: int) -> np.ndarray:
        """Return the image reduced as reduce_image does (longest side at most longest [px]).

        A JPEG is decoded straight at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling,
        several times cheaper than a full decode) where that is still at least the target.
        """
        flag = None if self._image is not None else _reduced_decode_flag(
            self.width, self.height, longest)
        if flag is None:
            return reduce_image(self.image, longest)
        return reduce_image(_decode(self.jpeg, flag), longest)


def decode_reduced(jpeg: bytes, longest: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Return a JPEG's pixels reduced as reduce_image does, and its full (width, height).

    Decoded at 1/2, 1/4 or 1/8 of its size where that is still at least the target, as
    Frame.reduced does. Raises SourceError for bytes that are not a decodable JPEG.
    """
    width, height = jpeg_size(jpeg)
    flag = _reduced_decode_flag(width, height, longest)
    return reduce_image(_decode(jpeg, cv2.IMREAD_COLOR if flag is None else flag),
                        longest), (width, height)


def _reduced_decode_flag(width: int, height: int, longest: int) -> int | None:
    """Return the imdecode flag of the smallest DCT scaling still at least reduced_size.

    None when no scaling (1/8, 1/4, 1/2) is that large: decode in full.
    """
    target = reduced_size(width, height, longest)
    for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                         (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if width // factor >= target[0] and height // factor >= target[1]:
            return flag
    return None


#: JPEG start-of-frame markers (baseline, extended, progressive, lossless; not DHT/JPG/DAC).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF})


#: The first two bytes of every JPEG (start-of-image marker).
JPEG_START = b'\xff\xd8'


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) [px] from a JPEG's frame header, without decoding it.

    Raises BadFrame (a SourceError) when data is not a JPEG or has no frame header.
    """
    if data[:2] != JPEG_START:
        raise BadFrame('not a JPEG image (no start-of-image marker)')
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise BadFrame(f'corrupt JPEG: no marker at byte {position}')
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2:position + 4], 'big')
        if marker in _SOF_MARKERS and position + 9 <= len(data):
            height = int.from_bytes(data[position + 5:position + 7], 'big')
            width = int.from_bytes(data[position + 7:position + 9], 'big')
            if width and height:
                return width, height
        position += 2 + length
    raise BadFrame('corrupt JPEG: no frame header with a size')


def _decode(jpeg: bytes, flag: int) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flag)
    if image is None:
        raise BadFrame('a JPEG frame of the source cannot be decoded')
    return image


class SourceError(RuntimeError):
    """A source that cannot be opened or read: missing file, vanished device, bad stream."""


class BadFrame(SourceError):
    """One frame cannot be used (not a JPEG, undecodable); the source goes on with the next.

    A source's read() raises it for a frame it skips (the frame still counts in Frame.index);
    a source that stays open needs no reopening.
    """


#: Frames in a row a capture may deliver unusable before it is reopened (MJPEG then decoded).
MAX_BAD_FRAMES = 10


class SourceEnded(Exception):
    """A non-looping file or folder has no more frames.

    Not a SourceError: the end of a recording is normal and must not trigger a reconnect.
    early: why the end came sooner than the source announced, or ''.
    """

    def __init__(self, description: str, early: str = '') -> None:
        """Say that the source of description ended (early, if early says why)."""
        super().__init__(f'{description} ended{early}')
        self.early = early


class FrameSource(abc.ABC):
    """Something that yields frames: open(), then read() until SourceEnded, then close()."""

    #: Human-readable name of the source, for logs and diagnostics.
    description: str
    #: Frame rate the source is meant to run at [Hz], or None when unknown.
    nominal_fps: float | None
    #: A live source (camera) delivers now or never; a recording can wait for its readers.
    live: bool = False

    def __init__(self, description: str, nominal_fps: float | None) -> None:
        """Set the common attributes; subclasses open nothing here."""
        self.description = description
        self.nominal_fps = nominal_fps
        self._next_index = 0

    @abc.abstractmethod
    def open(self) -> None:
        """Open (or reopen) the source; raise SourceError if it cannot be used."""

    @abc.abstractmethod
    def read(self) -> Frame:
        """Return the next frame; raise SourceEnded at the end, SourceError on failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the source; safe to call more than once."""

    def __enter__(self) -> 'FrameSource':
        """Open the source for a with-block."""
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the source at the end of a with-block."""
        self.close()

    def _frame(self, stamp: float, image: np.ndarray | None = None,
               jpeg: bytes | None = None) -> Frame:
        frame = Frame(stamp, self._next_index, image, jpeg)
        self._next_index += 1
        return frame


class _Pacer:
    """Spaces calls to wait() one period apart on the monotonic clock (no-op without a rate).

    A wait ends early once stop is set: a slow rate must not hold up a shutdown.
    """

    def __init__(self, fps: float | None, stop: threading.Event | None = None) -> None:
        self._period = 1.0 / fps if fps else 0.0
        self._due: float | None = None
        self._stop = stop or threading.Event()

    def wait(self) -> None:
        if not self._period:
            return
        now = time.monotonic()
        # More than a period late (first call, slow consumer): restart the schedule rather
        # than hand out a burst of frames to catch up.
        if self._due is None or now - self._due > self._period:
            self._due = now
        elif self._due > now:
            self._stop.wait(self._due - now)
        self._due += self._period


#: FourCCs of Motion-JPEG streams, whose frames are passed on as the source's own JPEGs.
MOTION_JPEG_FOURCCS = frozenset({'MJPG', 'MJPA', 'AVDJ', 'JPEG'})


def _capture_fps(capture: cv2.VideoCapture) -> float | None:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if math.isfinite(fps) and fps > 0 else None


def _fourcc(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, 'little').decode('latin-1').upper()


class _CaptureSource(FrameSource):
    """Shared grab/retrieve logic for sources read through cv2.VideoCapture.

    A Motion-JPEG stream is read without decoding (OpenCV's raw mode): frames carry the
    source's own JPEG (Frame.jpeg), decoded only where pixels are needed. A frame that is not
    a JPEG, or cannot be decoded, is skipped (BadFrame); after MAX_BAD_FRAMES in a row the
    source raises SourceError, to be reopened, and a raw one decodes from its next open() on.
    """

    def __init__(self, description: str, nominal_fps: float | None) -> None:
        super().__init__(description, nominal_fps)
        self._capture: cv2.VideoCapture | None = None
        self._raw = False     # the open capture delivers undecoded JPEGs
        self._raw_ok = True   # raw mode may be tried at the next open()
        self._bad_in_a_row = 0
        self._grabbed = 0     # frames grabbed since the capture was opened

    def close(self) -> None:
        """Release the capture; safe to call more than once."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _use_raw_jpeg(self, capture: cv2.VideoCapture, prop: int, raw_value: float) -> None:
        """Switch a Motion-JPEG capture to raw frames by setting prop to raw_value."""
        self._raw = (self._raw_ok and _fourcc(capture) in MOTION_JPEG_FOURCCS
                     and capture.set(prop, raw_value))

    def _grab(self) -> Frame | None:
        """Grab one frame (decoded, or its JPEG), or return None when the capture has no more."""
        if self._capture is None:
            raise SourceError(f'{self.description} is not open; call open() first')
        if not self._capture.grab():
            return None
        self._grabbed += 1
        stamp = time.time()
        ok, image = self._capture.retrieve()
        try:
            if not ok or image is None:
                raise BadFrame('grabbed but not decoded')
            frame = self._frame(stamp, jpeg=image.tobytes()) if self._raw else \
                self._frame(stamp, image)
        except BadFrame as error:
            self._skip(error)
        self._bad_in_a_row = 0
        return frame

    def _skip(self, error: BadFrame) -> NoReturn:
        """Count an unusable frame; raise BadFrame, or SourceError when too many in a row."""
        index = self._next_index
        self._next_index += 1
        self._bad_in_a_row += 1
        if self._bad_in_a_row < MAX_BAD_FRAMES:
            raise BadFrame(f'{self.description}: frame {index} skipped ({error})') from error
        self._bad_in_a_row = 0
        fallback = ''
        if self._raw:
            self._raw_ok = False
            fallback = ' as Motion-JPEG; decoding frames from the next open on'
        raise SourceError(f'{self.description}: {MAX_BAD_FRAMES} frames in a row unusable'
                          f'{fallback} ({error})') from error


class V4L2Source(_CaptureSource):
    """A Video4Linux2 camera, by index (0 for /dev/video0) or device path."""

    live = True

    def __init__(self, device: str | int, width: int = 0, height: int = 0,
                 fps: float = 0) -> None:
        """Describe the camera; width, height and fps of 0 keep the driver's defaults."""
        super().__init__(f'V4L2 camera {device}', fps or None)
        self._device = device
        self._width = width
        self._height = height
        self._fps = fps

    def open(self) -> None:
        """Open the device and apply the requested format; raise SourceError if impossible."""
        self.close()
        path = Path(f'/dev/video{self._device}' if isinstance(self._device, int)
                    else self._device)
        # OpenCV only logs a warning for a missing device; checking first gives a clear error.
        if not path.exists():
            raise SourceError(f'{self.description}: {path} does not exist')
        capture = cv2.VideoCapture(str(path), cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f'{self.description}: cannot open {path} (busy, or no permission?)')
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self._width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, self._height),
                            (cv2.CAP_PROP_FPS, self._fps)):
            if value:
                capture.set(prop, value)
        self._use_raw_jpeg(capture, cv2.CAP_PROP_CONVERT_RGB, 0)
        self._capture = capture
        self.nominal_fps = _capture_fps(capture) or self._fps or None

    def read(self) -> Frame:
        """Return the next camera frame; raise SourceError if the device stopped delivering."""
        frame = self._grab()
        if frame is None:
            raise SourceError(f'{self.description}: frame grab failed (device unplugged?)')
        return frame


class VideoFileSource(_CaptureSource):
    """A video file, read once or looped, as fast as possible or at its own frame rate."""

    def __init__(self, path: str | Path, loop: bool = False, realtime: bool = False,
                 rate: float = 1.0, stop: threading.Event | None = None) -> None:
        """Describe the file; realtime paces read() at rate x the file's FPS, else no waiting.

        A rate below 1 plays slower than recorded, as `ros2 bag play --rate` does, e.g. to
        give a slow machine's detector every frame of a replay. Setting stop ends a wait.
        """
        if not rate > 0:
            raise ValueError(f'playback rate must be positive, got {rate}')
        super().__init__(f'video file {path}', None)
        self._path = Path(path)
        self._loop = loop
        self._realtime = realtime
        self._rate = rate
        self._stop = stop
        self._pacer = _Pacer(None)

    def open(self) -> None:
        """Open the file; raise SourceError if it is missing or undecodable.

        Opened again after a failure, it goes on after the last frame read, not from its start:
        frames already published must not come again under new stamps.
        """
        resume = self._grabbed
        self._open_capture()
        if resume and not self._capture.set(cv2.CAP_PROP_POS_FRAMES, resume):
            for _ in range(resume):   # a codec OpenCV cannot seek in: read up to it
                if not self._capture.grab():
                    break
        self._grabbed = resume
        paced = self._realtime and self.nominal_fps
        self._pacer = _Pacer(self.nominal_fps * self._rate if paced else None, self._stop)

    def _open_capture(self) -> None:
        self.close()
        if not self._path.is_file():
            raise SourceError(f'{self.description}: no such file')
        capture = cv2.VideoCapture(str(self._path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f'{self.description}: OpenCV cannot decode it')
        self._use_raw_jpeg(capture, cv2.CAP_PROP_FORMAT, -1)
        self._capture = capture
        self._grabbed = 0
        self.nominal_fps = _capture_fps(capture)

    def read(self) -> Frame:
        """Return the next frame, rewinding at the end when looping, else raise SourceEnded."""
        self._pacer.wait()
        frame = self._grab()
        if frame is None and self._loop:
            # Reopening is more reliable than seeking to frame 0 across codecs.
            self._open_capture()
            frame = self._grab()
            if frame is None:
                raise SourceError(f'{self.description}: no frames to loop over')
        if frame is None:
            raise SourceEnded(self.description, self._shortfall())
        return frame

    def _shortfall(self) -> str:
        """Return a note when the file ended well before the frames its header announces."""
        announced = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if announced - self._grabbed > max(2, announced // 100):   # counts of some codecs: near
            return (f' after {self._grabbed} of the {announced} frames its header announces '
                    '(a truncated file?)')
        return ''


def video_size(path: str | Path) -> tuple[int, int]:
    """Return the width and height [px] of a video file's frames (its first frame's)."""
    with VideoFileSource(path) as source:
        frame = source.read()
    return frame.width, frame.height


class ImageFolderSource(FrameSource):
    """The image files of one folder in name order, at a given rate, once or looped."""

    def __init__(self, path: str | Path, fps: float = 0.0, loop: bool = False,
                 warn: Callable[[str], None] = _LOG.warning,
                 stop: threading.Event | None = None) -> None:
        """Describe the folder; fps > 0 paces read(), 0 reads as fast as possible.

        warn receives a message for each unreadable image, which is skipped. Setting stop
        ends a wait.
        """
        super().__init__(f'image folder {path}', fps or None)
        self._path = Path(path)
        self._pacer = _Pacer(fps, stop)
        self._loop = loop
        self._warn = warn
        self._files: list[Path] = []
        self._position = 0

    def open(self) -> None:
        """List the images; raise SourceError if the folder is missing or has none."""
        if not self._path.is_dir():
            raise SourceError(f'{self.description}: no such folder')
        self._files = sorted(p for p in self._path.iterdir()
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f'{self.description}: no image files '
                              f'({", ".join(sorted(IMAGE_SUFFIXES))})')
        self._position = 0

    def read(self) -> Frame:
        """Return the next readable image; raise SourceEnded after the last one unless looping."""
        if not self._files:
            raise SourceError(f'{self.description} is not open; call open() first')
        self._pacer.wait()
        skipped = 0
        while True:
            if self._position == len(self._files):
                if not self._loop:
                    raise SourceEnded(self.description)
                self._position = 0
            if skipped == len(self._files):
                # Every file failed: looping on would spin forever.
                raise SourceError(f'{self.description}: none of the images can be read')
            path = self._files[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            stamp = time.time()
            if image is not None:
                return self._frame(stamp, image)
            skipped += 1
            self._warn(f'{self.description}: skipping unreadable image {path.name}')

    def close(self) -> None:
        """Forget the file list; open() lists the folder again."""
        self._files = []


def open_source(spec: str, width: int = 0, height: int = 0, fps: float = 0.0,
                loop: bool = False, realtime: bool = True, rate: float = 1.0,
                warn: Callable[[str], None] = _LOG.warning,
                stop: threading.Event | None = None) -> FrameSource:
    """Pick the source for spec, without opening it.

    An integer or a path under /dev/ is a V4L2 camera (width, height, fps requested from it):
    /dev/videoN, and the stable names udev gives it (/dev/v4l/by-id/..., /dev/v4l/by-path/...,
    a rule's symlink). A folder is an ImageFolderSource at fps (warn gets its skipped files); a
    file is a VideoFileSource (realtime paces it at rate x its own FPS). loop applies to files
    and folders; setting stop ends their waits. Raise ValueError for anything else.
    """
    text = spec.strip()
    if text.isdigit():
        return V4L2Source(int(text), width, height, fps)
    path = Path(text).expanduser()
    if text and path.is_dir():
        return ImageFolderSource(path, fps, loop, warn, stop)
    if path.is_file():   # a recording in /dev/shm too
        return VideoFileSource(path, loop, realtime, rate, stop)
    if text.startswith('/dev/'):   # a device, or one not plugged in yet
        return V4L2Source(text, width, height, fps)
    raise ValueError(f'source {spec!r} is neither a camera index, a /dev/ device, an image '
                     'folder nor a video file')


class Backoff:
    """Exponentially growing wait between attempts to reopen a dropped source."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0, factor: float = 2.0) -> None:
        """Start at initial_s, multiply by factor after each delay, never exceed max_s."""
        if not 0 < initial_s <= max_s or factor < 1:
            raise ValueError('Backoff needs 0 < initial_s <= max_s and factor >= 1, got '
                             f'initial_s={initial_s}, max_s={max_s}, factor={factor}')
        self._initial = initial_s
        self._max = max_s
        self._factor = factor
        self._delay = initial_s

    def next_delay(self) -> float:
        """Return how long to wait before the next attempt [s], and lengthen the one after."""
        delay = self._delay
        self._delay = min(self._delay * self._factor, self._max)
        return delay

    def reset(self) -> None:
        """Go back to initial_s, after a successful reopen."""
        self._delay = self._initial


def reduced_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Return (width, height) scaled so that the longest side is at most longest [px].

    Rounded as ultralytics' letterbox rounds, so a detector whose image_size is longest
    resizes nothing more; an image already that small keeps its size (longest 0: no limit).
    """
    scale = longest / max(width, height) if longest else 1.0
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def reduce_image(image: np.ndarray, longest: int) -> np.ndarray:
    """Return image resized to reduced_size (bilinear, as the detector's letterbox), or itself."""
    height, width = image.shape[:2]
    size = reduced_size(width, height, longest)
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
