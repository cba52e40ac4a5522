"""Frame sources on the shared test video and on generated image folders."""

import os
from pathlib import Path
import threading
import time

import cv2
import numpy as np
import pytest

from facetrack_ros.core.camera import (BadFrame, Backoff, Frame, ImageFolderSource, jpeg_size,
                                       MAX_BAD_FRAMES, open_source, reduce_image,
                                       reduced_size, SourceEnded, SourceError, V4L2Source,
                                       video_size, VideoFileSource)
from motion_jpeg import write_grey_motion_jpeg


@pytest.fixture(scope='session')
def clip(shared_dir: Path) -> Path:
    """Return the 640x360, 29.97 FPS, 275-frame test clip."""
    return shared_dir / 'data' / 'video' / 'hamilton_clip.mp4'


def _read_all(source: VideoFileSource | ImageFolderSource) -> list[Frame]:
    frames = []
    with pytest.raises(SourceEnded):
        while True:
            frames.append(source.read())
    return frames


def test_video_file_reads_to_the_end(clip: Path) -> None:
    """Every frame comes out 640x360 BGR, numbered and stamped in order, then SourceEnded."""
    with VideoFileSource(clip, loop=False, realtime=False) as source:
        assert source.nominal_fps == pytest.approx(29.97, abs=0.01)
        frames = _read_all(source)
        with pytest.raises(SourceEnded):
            source.read()
    assert len(frames) > 250
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in frames] == list(range(len(frames)))
    stamps = np.array([f.stamp for f in frames])
    assert np.all(np.diff(stamps) >= 0) and stamps[-1] > stamps[0]
    assert abs(stamps[-1] - time.time()) < 60


def test_video_file_loops(clip: Path) -> None:
    """With loop=True the first frame comes back after the last, and indices keep counting."""
    with VideoFileSource(clip, loop=True, realtime=False) as source:
        first = source.read()
        count = 1
        while True:
            frame = source.read()
            count += 1
            if count > 1 and np.array_equal(frame.image, first.image):
                break
            assert count < 1000, 'loop never came back to the first frame'
    assert frame.index == count - 1 > 250


def test_video_file_realtime_follows_fps(clip: Path) -> None:
    """Realtime reads are spaced by about 1/FPS; fast reads are not."""
    n = 16
    with VideoFileSource(clip, realtime=True) as source:
        start = time.monotonic()
        for _ in range(n):
            source.read()
        paced = time.monotonic() - start
    expected = (n - 1) / 29.97
    assert 0.8 * expected < paced < 2 * expected + 0.3
    with VideoFileSource(clip, realtime=False) as source:
        start = time.monotonic()
        for _ in range(n):
            source.read()
        assert time.monotonic() - start < paced
    with VideoFileSource(clip, realtime=True, rate=0.5) as source:
        start = time.monotonic()
        for _ in range(n):
            source.read()
        assert time.monotonic() - start > 1.6 * expected, 'half rate takes twice as long'
    with pytest.raises(ValueError, match='rate'):
        VideoFileSource(clip, realtime=True, rate=0.0)


def test_video_file_errors(tmp_path: Path) -> None:
    """A missing or undecodable file raises SourceError at open, reading unopened too."""
    with pytest.raises(SourceError, match='no such file'):
        VideoFileSource(tmp_path / 'missing.mp4').open()
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(b'not a video' * 100)
    with pytest.raises(SourceError):
        VideoFileSource(junk).open()
    with pytest.raises(SourceError, match='not open'):
        VideoFileSource(junk).read()


def _write_folder(folder: Path) -> list[np.ndarray]:
    """Write three distinct JPEGs, a corrupt one between them and a non-image file."""
    images = [np.full((48, 64, 3), 40 * (i + 1), np.uint8) for i in range(3)]
    for i, image in zip((0, 2, 3), images):
        assert cv2.imwrite(str(folder / f'img_{i:02d}.jpg'), image)
    (folder / 'img_01.jpg').write_bytes(b'\xff\xd8 truncated jpeg')
    (folder / 'notes.txt').write_text('not an image')
    return images


def test_image_folder_skips_corrupt_file(tmp_path: Path) -> None:
    """Valid images come out in name order; the corrupt one is reported and skipped."""
    images = _write_folder(tmp_path)
    warnings: list[str] = []
    with ImageFolderSource(tmp_path, fps=0, warn=warnings.append) as source:
        frames = _read_all(source)
    assert len(frames) == 3
    for frame, image in zip(frames, images):
        assert frame.image.shape == (48, 64, 3)
        assert np.abs(frame.image.astype(int) - image).max() < 8  # JPEG loss only
    assert [f.index for f in frames] == [0, 1, 2]
    assert len(warnings) == 1 and 'img_01.jpg' in warnings[0]


def test_image_folder_loops_and_paces(tmp_path: Path) -> None:
    """Looping wraps to the first image; fps spaces the reads."""
    _write_folder(tmp_path)
    with ImageFolderSource(tmp_path, fps=20.0, loop=True, warn=lambda _: None) as source:
        assert source.nominal_fps == 20.0
        start = time.monotonic()
        frames = [source.read() for _ in range(7)]
        elapsed = time.monotonic() - start
    assert np.array_equal(frames[0].image, frames[3].image)
    assert 0.8 * 6 / 20 < elapsed < 2 * 6 / 20 + 0.3


def test_image_folder_errors(tmp_path: Path) -> None:
    """Missing folder, a folder without images, and one with only broken images fail clearly."""
    with pytest.raises(SourceError, match='no such folder'):
        ImageFolderSource(tmp_path / 'missing').open()
    with pytest.raises(SourceError, match='no image files'):
        ImageFolderSource(tmp_path).open()
    (tmp_path / 'bad.png').write_bytes(b'broken')
    with ImageFolderSource(tmp_path, loop=True, warn=lambda _: None) as source:
        with pytest.raises(SourceError, match='none of the images'):
            source.read()


def test_missing_v4l2_device_fails_fast() -> None:
    """A device that does not exist raises SourceError at once, by path or by index."""
    for device in ('/dev/video_missing_42', 987):
        start = time.monotonic()
        with pytest.raises(SourceError, match='does not exist'):
            V4L2Source(device).open()
        assert time.monotonic() - start < 1.0


def test_open_source_dispatch(clip: Path, tmp_path: Path) -> None:
    """Pick V4L2 for an index or /dev/..., a folder or video for paths, else ValueError."""
    assert isinstance(open_source('0'), V4L2Source)
    assert isinstance(open_source(' 2 '), V4L2Source)
    # udev's stable names of a camera, which multi-camera robots use.
    for stable in ('/dev/v4l/by-id/usb-Logitech_C920-video-index0',
                   '/dev/v4l/by-path/pci-0000:00:14.0-usb-0:2:1.0-video-index0',
                   '/dev/front_camera'):
        assert isinstance(open_source(stable), V4L2Source)
    shm = Path('/dev/shm')
    if shm.is_dir():   # a recording kept in memory (tmpfs) is a file, not a device
        in_memory = shm / f'facetrack_test_{os.getpid()}.mp4'
        in_memory.write_bytes(clip.read_bytes())
        try:
            assert isinstance(open_source(str(in_memory)), VideoFileSource)
        finally:
            in_memory.unlink()
    camera = open_source('/dev/video3', width=1280, height=720, fps=30)
    assert isinstance(camera, V4L2Source) and camera.nominal_fps == 30
    folder = open_source(str(tmp_path), fps=5)
    assert isinstance(folder, ImageFolderSource) and folder.nominal_fps == 5
    assert isinstance(open_source(str(clip), loop=True), VideoFileSource)
    # Cameras deliver now or never; recordings can wait for their readers.
    assert camera.live and not folder.live and not open_source(str(clip)).live
    for bad in ('', 'rtsp://camera/stream', str(tmp_path / 'missing.mp4')):
        with pytest.raises(ValueError, match='neither a camera index'):
            open_source(bad)


def test_backoff_sequence() -> None:
    """Delays double up to the cap and start over after reset."""
    backoff = Backoff(initial_s=0.5, max_s=3.0, factor=2.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    with pytest.raises(ValueError):
        Backoff(initial_s=0)
    with pytest.raises(ValueError):
        Backoff(initial_s=2, max_s=1)


def test_reduced_size_keeps_the_aspect_and_never_enlarges() -> None:
    """The longest side is brought to the limit, rounded as a letterbox rounds it."""
    assert reduced_size(1920, 1080, 640) == (640, 360)
    assert reduced_size(768, 576, 640) == (640, 480)
    assert reduced_size(1080, 1920, 640) == (360, 640)
    assert reduced_size(1000, 3, 640) == (640, 2)
    assert reduced_size(640, 360, 640) == (640, 360)
    assert reduced_size(320, 240, 640) == (320, 240)
    assert reduced_size(1920, 1080, 0) == (1920, 1080)


def test_reduce_image_resizes_once_or_not_at_all() -> None:
    """A large frame is resized bilinearly; a frame within the limit is returned as it is."""
    rng = np.random.default_rng(3)
    large = rng.integers(0, 256, (1080, 1920, 3), np.uint8)
    reduced = reduce_image(large, 640)
    assert reduced.shape == (360, 640, 3)
    assert np.array_equal(reduced, cv2.resize(large, (640, 360),
                                              interpolation=cv2.INTER_LINEAR))
    small = large[:360, :640]
    assert reduce_image(small, 640) is small


@pytest.fixture(scope='module')
def motion_jpeg(tmp_path_factory, clip: Path) -> Path:
    """Write 1280x720 Motion-JPEG frames of the shared clip, as a UVC camera streams them."""
    path = tmp_path_factory.mktemp('mjpeg') / 'clip_720p.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25.0, (1280, 720))
    capture = cv2.VideoCapture(str(clip))
    for _ in range(12):
        ok, image = capture.read()
        assert ok
        writer.write(cv2.resize(image, (1280, 720), interpolation=cv2.INTER_CUBIC))
    writer.release()
    capture.release()
    return path


def test_jpeg_size_reads_the_frame_header_without_decoding() -> None:
    """Baseline and progressive JPEGs give their size; other bytes raise SourceError."""
    image = np.zeros((123, 457, 3), np.uint8)
    for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        ok, data = cv2.imencode('.jpg', image, flags)
        assert ok and jpeg_size(data.tobytes()) == (457, 123)
    ok, png = cv2.imencode('.png', image)
    for bad in (png.tobytes(), b'\xff\xd8\xff\xe0\x00\x10JFIF', b''):
        with pytest.raises(SourceError):
            jpeg_size(bad)


def test_a_motion_jpeg_file_gives_its_own_jpegs_decoded_at_need(motion_jpeg: Path) -> None:
    """Frames carry the file's JPEGs unchanged; image and reduced() match a decode and resize."""
    decoded = cv2.VideoCapture(str(motion_jpeg))
    raw = cv2.VideoCapture(str(motion_jpeg))
    assert raw.set(cv2.CAP_PROP_FORMAT, -1)
    with VideoFileSource(motion_jpeg, realtime=False) as source:
        frames = _read_all(source)
    assert len(frames) == 12
    for frame in frames:
        ok, image = decoded.read()
        assert ok and raw.grab()
        assert frame.jpeg == raw.retrieve()[1].tobytes()
        assert (frame.width, frame.height) == (1280, 720)
        reduced = frame.reduced(640)  # decoded at half size, then to 640x360
        assert reduced.shape == (360, 640, 3)
        assert np.mean(np.abs(reduced.astype(int) - reduce_image(image, 640))) < 3
        # FFmpeg and libjpeg round the inverse DCT and upsample colour differently.
        assert np.mean(np.abs(frame.image.astype(int) - image)) < 1
    assert frames[0].reduced(0).shape == (720, 1280, 3)


def test_frames_of_other_codecs_are_decoded_pixels(clip: Path) -> None:
    """An H.264 file is decoded as it is read: no JPEG to pass on."""
    with VideoFileSource(clip, realtime=False) as source:
        frame = source.read()
    assert frame.jpeg is None and frame.image.shape == (360, 640, 3)
    assert frame.reduced(320).shape == (180, 320, 3)


def test_video_size_is_that_of_the_frames(clip: Path, tmp_path: Path) -> None:
    """The shared clip is 640x360; a Motion-JPEG file written here keeps its 320x180."""
    written = tmp_path / 'small.avi'
    writer = cv2.VideoWriter(str(written), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (320, 180))
    for _ in range(3):
        writer.write(np.full((180, 320, 3), 128, np.uint8))
    writer.release()
    assert video_size(clip) == (640, 360)
    assert video_size(written) == (320, 180)


def _level(frame: Frame, levels: list[int]) -> int:
    """Return the position in levels of the frame's grey level."""
    return min(range(len(levels)), key=lambda i: abs(levels[i] - int(frame.image[0, 0, 0])))


def test_a_broken_frame_is_skipped_and_a_reopened_file_goes_on(tmp_path: Path) -> None:
    """A frame that is not a JPEG is skipped (BadFrame) and still counts in the indices.

    MAX_BAD_FRAMES in a row end the source (SourceError): opened again, the same object
    decodes its frames and goes on after the last frame read, not from the start.
    """
    path = tmp_path / 'broken.avi'
    bad = range(3, 3 + MAX_BAD_FRAMES)
    levels = [10 + 7 * i for i in range(30)]
    write_grey_motion_jpeg(path, levels, (64, 48), not_jpeg=bad)
    source = VideoFileSource(path)
    source.open()
    got = [source.read() for _ in range(3)]
    for index in bad[:-1]:
        with pytest.raises(BadFrame, match=f'frame {index} skipped'):
            source.read()
    with pytest.raises(SourceError, match='in a row unusable as Motion-JPEG; decoding'):
        source.read()
    source.open()
    got += _read_all(source)
    source.close()
    assert [f.index for f in got] == [0, 1, 2, *range(bad.stop, 30)]
    assert [_level(f, levels) for f in got] == [f.index for f in got], 'nothing replayed'
    assert got[0].jpeg is not None and got[-1].jpeg is None, 'raw at first, then decoded'


def test_a_slow_source_stops_waiting_when_told(tmp_path: Path) -> None:
    """A folder read at 0.1 frames/s returns from its wait once stop is set (a shutdown)."""
    for i in range(2):
        assert cv2.imwrite(str(tmp_path / f'{i}.png'), np.zeros((8, 8, 3), np.uint8))
    stop = threading.Event()
    source = open_source(str(tmp_path), fps=0.1, stop=stop)
    source.open()
    source.read()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    source.read()
    assert time.monotonic() - start < 2.0


def test_a_truncated_file_ends_saying_so(tmp_path: Path) -> None:
    """A file cut short (a full disk, a copy stopped) ends with how many frames were missing."""
    whole = tmp_path / 'whole.avi'
    write_grey_motion_jpeg(whole, [10 + 7 * i for i in range(30)], (64, 48))
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    for path, early in ((whole, ''), (cut, 'of the 30 frames its header announces')):
        with VideoFileSource(path) as source:
            with pytest.raises(SourceEnded) as ended:
                while True:
                    try:
                        source.read()
                    except BadFrame:   # the cut may leave a frame short
                        pass
        assert early in ended.value.early and bool(early) == bool(ended.value.early)
