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


def test_camera_info_describes_an_uncalibrated_frame() -> None:
    """Size and header only: K all zero says "not calibrated" to every CameraInfo reader."""
    header = Header(stamp=Time(sec=7), frame_id='cam_optical')
    info = camera_info(header, 1920, 1080)
    assert (info.width, info.height, info.header) == (1920, 1080, header)
    assert not any(info.k)
