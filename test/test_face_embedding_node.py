"""The face node pairs late tracks with their frames by camera time (real node, real DDS)."""

import cv2
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage

from facetrack_ros.conversions import bgr_to_compressed, ns_to_time
from facetrack_ros.face_embedding_node import FaceEmbeddingNode
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import image_qos_profile, RELIABLE_QOS
from face_frames import letterbox
from rostest_utils import spin_until

pytestmark = pytest.mark.ros

#: A 60 fps camera: twice the frames of a 30 fps one in the same camera time.
FRAME_NS = 10**9 // 60


@pytest.fixture
def face_node(ros_context):
    """Yield an active face node, its executor, a probe's publishers and what it receives.

    (node, executor, images publisher, tracks publisher, list of faces messages), reliable.
    """
    node = FaceEmbeddingNode(context=ros_context, parameter_overrides=[
        Parameter('image_qos', value='reliable')])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    probe = create_node('face_node_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    for each in (node, probe):
        executor.add_node(each)
    images = probe.create_publisher(CompressedImage, 'image_raw/compressed',
                                    image_qos_profile('reliable'))
    tracks = probe.create_publisher(PersonDetectionArray, 'tracks', RELIABLE_QOS)
    faces: list[PersonDetectionArray] = []
    probe.create_subscription(PersonDetectionArray, 'faces', faces.append, RELIABLE_QOS)
    assert spin_until(executor, lambda: images.get_subscription_count() > 0
                      and tracks.get_subscription_count() > 0)
    yield node, executor, images, tracks, faces
    executor.shutdown()
    for each in (node, probe):
        each.destroy_node()


def test_tracks_seconds_late_find_their_frame_at_60_fps_and_beyond_the_span_are_counted(
        face_node, shared_dir):
    """Tracks of a detector slowed to 0.5 Hz come 2.5 s (150 frames at 60 fps) after their frame.

    The face node still embeds the face of that frame; tracks older than image_cache_seconds
    behind the camera are counted as dropped, and the node goes on.
    """
    node, executor, images, tracks, faces = face_node
    frame = letterbox(cv2.imread(str(shared_dir / 'data/faces/obama.jpg')))
    jpeg = bgr_to_compressed(frame)
    t0 = 1_800_000_000 * 10**9

    def publish_frames(first: int, last: int) -> None:
        for index in range(first, last + 1):   # one at a time: the QoS keeps the last 5
            jpeg.header.stamp = ns_to_time(t0 + index * FRAME_NS)
            images.publish(jpeg)
            assert spin_until(executor, lambda: node.images.get(jpeg.header.stamp) is not None)

    def send_tracks(index: int) -> None:
        msg = PersonDetectionArray(image_width=640, image_height=360, detections=[
            PersonDetection(box=[0.0, 0.0, 640.0, 360.0], confidence=0.9, track_id=3)])
        msg.header.stamp = ns_to_time(t0 + index * FRAME_NS)
        tracks.publish(msg)

    publish_frames(0, 150)
    send_tracks(0)
    assert spin_until(executor, lambda: len(faces) == 1, timeout=30.0)
    assert faces[0].header.stamp == ns_to_time(t0)
    assert faces[0].detections[0].has_face and faces[0].detections[0].track_id == 3
    assert node.diagnostics.dropped == 0

    publish_frames(151, 200)   # frame 0 is now 3.3 s behind the camera
    send_tracks(0)
    assert spin_until(executor, lambda: node.diagnostics.dropped == 1, timeout=30.0)
    send_tracks(30)            # 2.8 s behind: still kept
    assert spin_until(executor, lambda: len(faces) == 2, timeout=30.0)
    assert faces[1].header.stamp == ns_to_time(t0 + 30 * FRAME_NS)
    assert node.diagnostics.dropped == 1


def _send_frame(face_node, image, stamp_ns: int,
                boxes: dict[int, list[float]]) -> None:
    """Publish image (as a JPEG) and, once the node holds it, tracks of it: {track id: box}."""
    node, executor, images, tracks, _ = face_node
    jpeg = bgr_to_compressed(image, quality=95)
    jpeg.header.stamp = ns_to_time(stamp_ns)
    images.publish(jpeg)
    assert spin_until(executor, lambda: node.images.get(jpeg.header.stamp) is not None)
    tracks.publish(PersonDetectionArray(
        header=jpeg.header, image_width=image.shape[1], image_height=image.shape[0],
        detections=[PersonDetection(box=box, confidence=0.9, track_id=track_id)
                    for track_id, box in boxes.items()]))


def test_a_box_over_a_neighbour_is_given_its_own_face_not_the_neighbours(
        face_node, shared_dir):
    """The node weighs every box of the frame (FaceAnalyzer.face_in_person's others).

    A wide box over Obama and half of Biden gets Obama's face, Biden's box his own. On its
    own, the wide box's strongest face is Biden's (test_face.py).
    """
    _, executor, _, _, faces = face_node
    _send_frame(face_node, cv2.imread(str(shared_dir / 'data/faces/two_people.jpg')),   # 1126x661
                1_800_000_000 * 10**9,
                {1: [200.0, 9.0, 900.0, 661.0], 2: [780.0, 20.0, 1060.0, 661.0]})
    assert spin_until(executor, lambda: len(faces) == 1, timeout=30.0)
    found = {d.track_id: d for d in faces[0].detections}
    assert found[1].has_face and found[2].has_face
    assert (found[1].face_box[0] + found[1].face_box[2]) / 2 < 500     # Obama's, at x 253-408
    assert (found[2].face_box[0] + found[2].face_box[2]) / 2 > 700     # Biden's, at x 778-964


def test_a_malformed_box_costs_only_itself_and_models_are_changed_only_unconfigured(
        face_node, shared_dir):
    """A NaN box in tracks is counted and skipped; the frame's good box still gets its face.

    Then the parameters the scheduler was built from: refused while configured (a set would
    change nothing), taken by the next configure.
    """
    node, executor, images, tracks, faces = face_node
    _send_frame(face_node, letterbox(cv2.imread(str(shared_dir / 'data/faces/obama.jpg'))),
                1_800_000_000 * 10**9,
                {1: [float('nan'), 0.0, 100.0, 100.0], 2: [0.0, 0.0, 640.0, 360.0]})
    assert spin_until(executor, lambda: len(faces) == 1, timeout=30.0)
    assert [(d.track_id, d.has_face) for d in faces[0].detections] == [(2, True)]
    assert node.diagnostics.errors == 1

    refused = node.set_parameters([Parameter('max_faces_per_frame', value=1)])[0]
    assert not refused.successful and 'taken at configure' in refused.reason
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.set_parameters([Parameter('max_faces_per_frame', value=1)])[0].successful
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert spin_until(executor, lambda: images.get_subscription_count() > 0
                      and tracks.get_subscription_count() > 0)
    _send_frame(face_node, cv2.imread(str(shared_dir / 'data/faces/two_people.jpg')),
                1_800_000_001 * 10**9,
                {5: [200.0, 9.0, 700.0, 661.0], 6: [780.0, 20.0, 1060.0, 661.0]})
    assert spin_until(executor, lambda: len(faces) == 2, timeout=30.0)
    assert len(faces[1].detections) == 1, 'one face a frame, as set'
