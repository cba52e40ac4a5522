"""Message conversions that the nodes share: serialized stamps, camera info, the stamp cache."""

from builtin_interfaces.msg import Time
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from facetrack_ros.conversions import (bgr_to_image, camera_info, ImageConversionError,
                                       serialized_stamp, StampedCache)


@pytest.mark.parametrize('stamp', [Time(sec=1_700_000_123, nanosec=456_789),
                                   Time(sec=0, nanosec=0), Time(sec=-5, nanosec=999_999_999)])
def test_serialized_stamp_reads_the_header_without_deserialising(stamp: Time) -> None:
    """The stamp of rclpy's own serialization of an image (and of any stamped message)."""
    image = bgr_to_image(np.zeros((4, 6, 3), np.uint8), Header(stamp=stamp, frame_id='cam'))
    assert serialized_stamp(serialize_message(image)) == stamp
    jpeg = CompressedImage(header=Header(stamp=stamp), format='jpeg', data=b'123')
    assert serialized_stamp(serialize_message(jpeg)) == stamp


def test_serialized_stamp_refuses_what_is_no_cdr_message() -> None:
    """Too short, or an encapsulation it cannot read: a clear error, no made-up stamp."""
    with pytest.raises(ImageConversionError, match='not a plain CDR message'):
        serialized_stamp(b'\x00\x01\x00\x00\x01')
    with pytest.raises(ImageConversionError, match='not a plain CDR message'):
        serialized_stamp(b'\x00\x03' + bytes(20))   # parameter-list CDR


def test_stamped_cache_files_serialized_messages_under_a_given_stamp() -> None:
    """Data without a header object is kept under the stamp given, bounded like the rest."""
    cache = StampedCache(2)
    for sec in (1, 2, 3):
        cache.add(f'frame {sec}'.encode(), Time(sec=sec))
    assert cache.get(Time(sec=1)) is None
    assert cache.get(Time(sec=3)) == b'frame 3'


def _at(seconds: float) -> Time:
    return Time(sec=int(seconds), nanosec=round((seconds % 1) * 1e9))


def test_stamped_cache_keeps_a_span_of_camera_time_at_any_frame_rate() -> None:
    """3 s of stamps are 90 frames at 30 fps and 180 at 60; the wall clock plays no part."""
    for fps in (30, 60):
        cache = StampedCache(span_s=3.0)
        for index in range(10 * fps):
            cache.add(b'jpeg', _at(100 + index / fps))
        latest = 100 + (10 * fps - 1) / fps
        assert cache.get(_at(latest - 3.0)) == b'jpeg'
        assert cache.get(_at(latest - 3.0 - 1 / fps)) is None
        assert cache.span_s() == pytest.approx(3.0)
        assert cache.latest_s() == pytest.approx(latest)


def test_stamped_cache_drops_the_frames_before_a_backward_jump_as_they_come_up() -> None:
    """A looping bag starts its stamps again: the frames of the previous loop go first."""
    cache = StampedCache(span_s=1.0)
    for stamp in (50.0, 50.5, 51.0, 10.0):
        cache.add(b'x', _at(stamp))
    assert [cache.get(_at(s)) for s in (50.0, 50.5, 51.0, 10.0)] == [None, None, None, b'x']
    assert cache.span_s() == 0.0


def test_stamped_cache_bounds_the_bytes_of_raw_and_compressed_images() -> None:
    """The oldest go once the messages weigh more than max_bytes; the newest always stays."""
    cache = StampedCache(span_s=60.0, max_bytes=2500)
    for sec in range(1, 6):
        cache.add(CompressedImage(header=Header(stamp=Time(sec=sec)), data=bytes(1000)))
    assert [cache.get(Time(sec=s)) is not None for s in range(1, 6)] == [False] * 3 + [True] * 2
    cache.add(bytes(4000), Time(sec=6))   # a serialized frame larger than the bound
    assert cache.get(Time(sec=5)) is None and cache.get(Time(sec=6)) == bytes(4000)
    assert cache.get(Time(sec=6), remove=True) is not None
    cache.add(bytes(1000), Time(sec=7))
    cache.add(bytes(1000), Time(sec=8))
    assert cache.get(Time(sec=7)) is not None, 'a removed message still weighed'


def test_stamped_cache_weighs_a_message_again_under_its_stamp_once() -> None:
    """A frame sent twice (a republishing relay) weighs once; clear() forgets the weights."""
    cache = StampedCache(span_s=60.0, max_bytes=2500)
    for _ in range(3):
        cache.add(bytes(1000), Time(sec=1))
    cache.add(bytes(1000), Time(sec=2))
    assert cache.get(Time(sec=1)) is not None
    cache.clear()
    assert cache.latest_s() is None and cache.span_s() == 0.0
    for sec in (3, 4):
        cache.add(bytes(1200), Time(sec=sec))
    assert cache.get(Time(sec=3)) is not None, 'cleared messages still weighed'


def test_stamped_cache_needs_a_positive_bound() -> None:
    """An unbounded cache of camera frames would take the robot's memory."""
    with pytest.raises(ValueError, match='needs a size, span_s or max_bytes'):
        StampedCache()
    with pytest.raises(ValueError, match='span_s must be > 0'):
        StampedCache(span_s=0.0)


def test_camera_info_describes_an_uncalibrated_frame() -> None:
    """Size and header only: K all zero says "not calibrated" to every CameraInfo reader."""
    header = Header(stamp=Time(sec=7), frame_id='cam_optical')
    info = camera_info(header, 1920, 1080)
    assert (info.width, info.height, info.header) == (1920, 1080, header)
    assert not any(info.k)
