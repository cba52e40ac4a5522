"""Bad input gets a clear error and the nodes keep running (real nodes over real DDS)."""

import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from facetrack_ros.camera_node import CameraNode
from facetrack_ros.conversions import bgr_to_image, ns_to_time
from facetrack_ros.core.history import MAX_FRAMES_PER_CALL
from facetrack_ros.face_embedding_node import FaceEmbeddingNode
from facetrack_ros.frame_history_node import FrameHistoryNode
from facetrack_ros.msg import PersonDetection, PersonDetectionArray
from facetrack_ros.parameters import image_qos_profile, RELIABLE_QOS
from facetrack_ros.srv import BacktrackSearch, GetFrames
from facetrack_ros.tracker_node import TrackerNode
from rostest_utils import spin_until

pytestmark = pytest.mark.ros
NAN = float('nan')


def _array(stamp_ns: int, detections: list[PersonDetection]) -> PersonDetectionArray:
    msg = PersonDetectionArray(image_width=64, image_height=48)
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.detections = detections
    return msg


def test_tracker_and_face_node_survive_malformed_detections(ros_context, tmp_path):
    """Malformed boxes (NaN, inverted) and a NaN quality are counted and skipped, not fatal."""
    tracker = TrackerNode(context=ros_context, parameter_overrides=[
        Parameter('event_log_dir', value=str(tmp_path))])
    face = FaceEmbeddingNode(context=ros_context, parameter_overrides=[
        Parameter('image_qos', value='reliable'), Parameter('image_transport', value='raw')])
    assert face.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert face.trigger_activate() == TransitionCallbackReturn.SUCCESS
    probe = create_node('bad_input_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (tracker, face, probe):
        executor.add_node(node)
    detections = probe.create_publisher(PersonDetectionArray, 'detections', RELIABLE_QOS)
    faces = probe.create_publisher(PersonDetectionArray, 'faces', RELIABLE_QOS)
    images = probe.create_publisher(Image, 'image_raw', image_qos_profile('reliable'))
    tracks_out: list[PersonDetectionArray] = []
    probe.create_subscription(PersonDetectionArray, 'tracks', tracks_out.append, RELIABLE_QOS)
    assert spin_until(executor, lambda: detections.get_subscription_count() > 0
                      and images.get_subscription_count() > 0)

    t0 = time.time_ns() - 10**9  # stamps near the node's clock, as a camera's
    detections.publish(_array(t0, [PersonDetection(box=[NAN, 0.0, 10.0, 10.0],
                                                   confidence=0.9),
                                   PersonDetection(box=[30.0, 5.0, 10.0, 45.0],
                                                   confidence=0.9)]))
    assert spin_until(executor, lambda: tracker.diagnostics.errors == 2)
    faces.publish(_array(t0, [PersonDetection(track_id=1, has_face=True, face_quality=NAN,
                                              embedding=[0.1] * 128)]))
    assert spin_until(executor, lambda: tracker.diagnostics.errors == 3)
    # The face node gets an inverted box for a frame it has the image of.
    image = bgr_to_image(np.zeros((48, 64, 3), np.uint8))
    image.header.stamp = ns_to_time(t0)
    images.publish(image)
    assert spin_until(executor, lambda: face.images.get(image.header.stamp) is not None)
    tracks = probe.create_publisher(PersonDetectionArray, 'tracks', RELIABLE_QOS)
    assert spin_until(executor, lambda: tracks.get_subscription_count() > 0)
    tracks.publish(_array(t0, [PersonDetection(box=[50.0, 40.0, 10.0, 5.0], track_id=7)]))
    assert spin_until(executor, lambda: face.diagnostics.errors >= 1)

    # Both nodes still work: good detections come out as tracks, tracked by the tracker.
    for i in range(5):
        detections.publish(_array(t0 + (i + 1) * 10**8, [PersonDetection(
            box=[10.0, 5.0, 30.0, 45.0], confidence=0.9)]))
    assert spin_until(executor, lambda: any(
        d.track_id >= 1 and list(d.box) == [10.0, 5.0, 30.0, 45.0]
        for t in tracks_out for d in t.detections))
    assert tracker.diagnostics.level == DiagnosticStatus.OK
    executor.shutdown()
    for node in (tracker, face, probe):
        node.destroy_node()


def test_history_services_refuse_bad_requests(ros_context, tmp_path):
    """Huge tolerance, inverted range, numeric overflow: a result code and a message."""
    node = FrameHistoryNode(context=ros_context, parameter_overrides=[
        Parameter('history_dir', value=str(tmp_path))])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    codes = GetFrames.Response
    huge = node.on_get_frames(GetFrames.Request(tolerance=1e300), GetFrames.Response())
    assert huge.result == codes.RESULT_INVALID_REQUEST and 'tolerance' in huge.message
    backwards = node.on_get_frames(
        GetFrames.Request(start=ns_to_time(10**18), end=ns_to_time(10**17)),
        GetFrames.Response())
    assert backwards.result == codes.RESULT_INVALID_REQUEST
    empty = node.on_get_frames(
        GetFrames.Request(start=ns_to_time(10**17), end=ns_to_time(10**18), limit=10**6),
        GetFrames.Response())
    assert empty.result == codes.RESULT_NOT_FOUND and len(empty.frames) <= MAX_FRAMES_PER_CALL
    search = BacktrackSearch.Request
    for request in (search(person_id='p', window_width=1e12),
                    search(person_id='p', window_width=NAN),
                    search(person_id='p', deep=True, deep_budget=NAN),
                    search(person_id='p', center_stamp=Time(sec=-5)),
                    search(person_id='p', min_similarity=NAN),
                    search(query_type=search.QUERY_EMBEDDING, embedding=[1e38] * 128),
                    search(query_type=search.QUERY_EMBEDDING, embedding=[NAN] * 128),
                    search(query_type=search.QUERY_IMAGE, image=Image(encoding='bgr8', width=4,
                                                                      height=4, step=12))):
        answer = node.on_search(request, BacktrackSearch.Response())
        assert answer.result == BacktrackSearch.Response.RESULT_INVALID_REQUEST, (
            request, answer.message)
        assert answer.message
    node.trigger_cleanup()
    node.destroy_node()


def test_camera_with_a_missing_file_retries_and_says_why(ros_context, tmp_path):
    """A source that is not there: ERROR diagnostics with the reason, retried, no crash."""
    missing = tmp_path / 'gone.mp4'
    node = CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(missing)),
        Parameter('reconnect_max_delay', value=0.2)])
    deadline = time.monotonic() + 5
    while node.diagnostics.errors < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.diagnostics.errors >= 2, 'the source is retried'
    assert str(missing) in node.diagnostics.message
    node.destroy_node()
