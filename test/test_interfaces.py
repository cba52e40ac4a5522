"""The generated interfaces: a PersonEvent crosses real DDS between two nodes intact."""

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
import pytest

from facetrack_ros.msg import PersonEvent
from facetrack_ros.srv import BacktrackSearch
from rostest_utils import spin_until


@pytest.mark.ros
def test_person_event_round_trip(ros_context):
    """Publish one fully populated PersonEvent and read it back field by field."""
    talker = rclpy.create_node('event_talker', context=ros_context)
    listener = rclpy.create_node('event_listener', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(talker)
    executor.add_node(listener)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    received: list[PersonEvent] = []
    listener.create_subscription(PersonEvent, 'person_events', received.append, qos)
    publisher = talker.create_publisher(PersonEvent, 'person_events', qos)

    sent = PersonEvent()
    sent.header.stamp.sec, sent.header.stamp.nanosec = 1_700_000_000, 123_456_789
    sent.header.frame_id = 'front_camera_optical'
    sent.kind = PersonEvent.PERSON_OUT
    sent.person_id, sent.track_id = 'person_7', 42
    sent.robot_id, sent.camera_id = 'robot_a', 'front'
    sent.box = [10.5, 20.0, 110.25, 300.0]
    sent.confidence, sent.duration = 0.875, 12.5
    sent.embedding = np.linspace(-1, 1, 128, dtype=np.float32).tolist()

    assert spin_until(executor, lambda: publisher.get_subscription_count() > 0)
    publisher.publish(sent)
    assert spin_until(executor, lambda: bool(received))
    got = received[0]
    assert got.header == sent.header
    assert (got.kind, got.person_id, got.track_id) == (PersonEvent.PERSON_OUT, 'person_7', 42)
    assert (got.robot_id, got.camera_id) == ('robot_a', 'front')
    np.testing.assert_array_equal(got.box, np.float32(sent.box))
    assert got.confidence == pytest.approx(0.875) and got.duration == 12.5
    np.testing.assert_array_equal(got.embedding, np.float32(sent.embedding))
    executor.shutdown()


def test_request_defaults_are_usable_from_rqt():
    """An untouched BacktrackSearch request asks for something sensible."""
    request = BacktrackSearch.Request()
    assert request.query_type == BacktrackSearch.Request.QUERY_PERSON_ID
    assert request.window_width == 3600.0
    assert request.max_results == 10 and not request.include_thumbnails
    assert len({BacktrackSearch.Response.RESULT_OK, BacktrackSearch.Response.RESULT_NO_MATCH,
                BacktrackSearch.Response.RESULT_INVALID_REQUEST,
                BacktrackSearch.Response.RESULT_UNKNOWN_PERSON,
                BacktrackSearch.Response.RESULT_NO_FACE,
                BacktrackSearch.Response.RESULT_NO_HISTORY,
                BacktrackSearch.Response.RESULT_ERROR}) == 7
