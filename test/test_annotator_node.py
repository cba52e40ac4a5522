"""The annotator draws each track where it is, its face box moving with it (real DDS)."""

import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from facetrack_ros.annotator_node import ANNOTATED_QOS, AnnotatorNode
from facetrack_ros.conversions import bgr_to_compressed, image_to_bgr, sec_to_time
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from rostest_utils import spin_until

pytestmark = pytest.mark.ros
T0 = 1_800_000_000.0


def _tracks(stamp: float, width: int, height: int, box: list[float],
            track_id: int) -> PersonDetectionArray:
    return PersonDetectionArray(
        header=Header(stamp=sec_to_time(stamp), frame_id='cam'), image_width=width,
        image_height=height, detections=[PersonDetection(box=box, track_id=track_id)])


def _drawn(image: Image, x: int, y: int) -> bool:
    """Return whether the annotated image's pixel (x, y) was drawn on (the frame is black)."""
    return int(image_to_bgr(image)[y, x].max()) > 0


def test_boxes_are_drawn_in_the_images_pixels_and_face_boxes_move_with_them(ros_context):
    """Tracks given in a 640x480 frame land where they are on a 1280x960 image.

    A face box stays where it lay in its track's box, as the track moves on; tracks whose
    image is gone are counted as dropped inputs.
    """
    node = AnnotatorNode(context=ros_context)
    viewer = create_node('annotated_viewer', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    for each in (node, viewer):
        executor.add_node(each)
    annotated: list[Image] = []
    viewer.create_subscription(Image, 'annotated', annotated.append, ANNOTATED_QOS)
    assert spin_until(executor, lambda: node.publisher.get_subscription_count() > 0)
    black = np.zeros((960, 1280, 3), np.uint8)

    def draw(stamp: float, tracks: PersonDetectionArray) -> Image:
        node.on_image(bgr_to_compressed(black, Header(stamp=sec_to_time(stamp))))
        node.on_tracks(tracks)
        count = len(annotated)
        assert spin_until(executor, lambda: len(annotated) > count)
        return annotated[-1]

    # A box of x 300..340, y 200..300 in a 640x480 frame is x 600..680, y 400..600 here.
    image = draw(T0, _tracks(T0, 640, 480, [300.0, 200.0, 340.0, 300.0], 2))
    assert _drawn(image, 600, 500) and not _drawn(image, 320, 250)
    # A face in the top left of its person's box at x 10..300; the person then walks 400 px.
    face = PersonDetectionArray(header=Header(stamp=sec_to_time(T0 + 1.0)), detections=[
        PersonDetection(track_id=3, has_face=True, box=[10.0, 10.0, 300.0, 600.0],
                        face_box=[20.0, 20.0, 60.0, 60.0])])
    node.on_faces(face)
    box = [10.0, 10.0, 300.0, 600.0]
    assert _drawn(draw(T0 + 1.2, _tracks(T0 + 1.2, 1280, 960, box, 3)), 20, 40)
    moved = draw(T0 + 3.0, _tracks(T0 + 3.0, 1280, 960, [410.0, 10.0, 700.0, 600.0], 3))
    assert _drawn(moved, 420, 40) and not _drawn(moved, 20, 40), 'the face box walked along'
    node.on_tracks(_tracks(T0 + 9.0, 1280, 960, box, 3))   # its image never came
    assert node.diagnostics.dropped == 1
    executor.shutdown()
    for each in (node, viewer):
        each.destroy_node()
