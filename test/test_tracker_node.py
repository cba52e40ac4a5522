"""tracker node over real DDS: detections and faces in, tracks, events and event log out."""

import numpy as np
import pytest
from rclpy import create_node
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from facetrack_ros.conversions import sec_to_time
from facetrack_ros.core.event_log import read_events
from facetrack_ros.face_embedding_node import FaceEmbeddingNode
from facetrack_ros.msg import PersonDetection, PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import InvalidParameterError, RELIABLE_QOS
from facetrack_ros.tracker_node import TrackerNode
from rostest_utils import spin_until

pytestmark = pytest.mark.ros


def _frame(stamp: float, boxes: list[list[float]]) -> PersonDetectionArray:
    msg = PersonDetectionArray(image_width=640, image_height=360)
    msg.header.stamp = sec_to_time(stamp)
    msg.header.frame_id = 'cam_optical'
    msg.detections = [PersonDetection(box=box, confidence=0.9) for box in boxes]
    return msg


def test_walker_in_face_then_out_and_logged(ros_context, tmp_path):
    """One walker: PERSON_IN, face identified, PERSON_OUT; all in the log once; bad face ok."""
    node = TrackerNode(context=ros_context, parameter_overrides=[
        Parameter('robot_id', value='r1'), Parameter('camera_id', value='front'),
        Parameter('event_log_dir', value=str(tmp_path)),
        Parameter('absence_timeout', value=1.0)])
    probe = create_node('tracker_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    events: list[PersonEvent] = []
    tracks: list[PersonDetectionArray] = []
    identified: list[PersonDetectionArray] = []
    probe.create_subscription(PersonEvent, 'person_events', events.append, RELIABLE_QOS)
    probe.create_subscription(PersonDetectionArray, 'tracks', tracks.append, RELIABLE_QOS)
    probe.create_subscription(
        PersonDetectionArray, 'identified_faces', identified.append, RELIABLE_QOS)
    detections = probe.create_publisher(PersonDetectionArray, 'detections', RELIABLE_QOS)
    faces = probe.create_publisher(PersonDetectionArray, 'faces', RELIABLE_QOS)
    assert spin_until(executor, lambda: detections.get_subscription_count() > 0
                      and faces.get_subscription_count() > 0 and
                      probe.count_publishers('person_events') > 0)

    start = 1_700_000_000.0
    embedding = np.random.default_rng(3).normal(size=128).astype(np.float32)
    for i in range(30):
        stamp = start + i / 10
        detections.publish(_frame(stamp, [[100 + 4 * i, 50, 180 + 4 * i, 300]]))
        assert spin_until(executor, lambda: len(tracks) == i + 1)
        if i == 3:
            track_id = tracks[-1].detections[0].track_id
            face = PersonDetectionArray(header=tracks[-1].header)
            face.detections = [
                PersonDetection(track_id=track_id, has_face=True, face_quality=0.9,
                                embedding=embedding.tolist()),
                PersonDetection(track_id=track_id, has_face=True, embedding=[1.0, 2.0])]
            faces.publish(face)
            assert spin_until(executor, lambda: bool(identified))
    # The walker leaves: empty frames move time past the absence timeout.
    for i in range(30, 50):
        detections.publish(_frame(start + i / 10, []))
    assert spin_until(executor, lambda: len(events) >= 2)

    assert tracks[0].header.frame_id == 'cam_optical'
    assert [e.kind for e in events] == [PersonEvent.PERSON_IN, PersonEvent.PERSON_OUT]
    person = events[0].person_id
    assert person and all(e.person_id == person for e in events)
    assert {d.person_id for t in tracks[5:] for d in t.detections} == {person}
    assert identified[0].detections[0].person_id == person
    assert len(identified[0].detections) == 1, 'the 2-value embedding is refused, not fatal'
    assert events[1].duration == pytest.approx(2.9, abs=0.15)
    assert (events[1].robot_id, events[1].camera_id) == ('r1', 'front')
    assert len(events[1].embedding) == 128

    # A replay that loops: time jumps back 60 s; tracking restarts instead of stalling.
    replay = [start - 60 + i / 10 for i in range(5)]
    for stamp in replay:
        detections.publish(_frame(stamp, [[100, 50, 180, 300]]))
    last = sec_to_time(replay[-1])
    assert spin_until(executor, lambda: any(t.header.stamp == last and t.detections
                                            for t in tracks))

    node.destroy_node()  # closes the log
    logged = read_events(tmp_path)
    assert [(r['kind'], r['person_id']) for r in logged] == [
        ('PERSON_IN', person), ('PERSON_OUT', person)]
    probe.destroy_node()
    executor.shutdown()


def test_invalid_parameters_are_refused_with_a_reason(ros_context):
    """Out of range or inconsistent at start: refused; at run time: refused with the reason."""
    with pytest.raises(ParameterException, match='min_similarity'):
        TrackerNode(context=ros_context,
                    parameter_overrides=[Parameter('min_similarity', value=2.0)])
    with pytest.raises(InvalidParameterError, match='track_low_thresh'):
        TrackerNode(context=ros_context,
                    parameter_overrides=[Parameter('track_low_thresh', value=0.9)])
    node = FaceEmbeddingNode(context=ros_context)
    refused = node.set_parameters([Parameter('upper_fraction', value=5.0)])[0]
    assert not refused.successful and 'upper_fraction' in refused.reason
    assert node.set_parameters([Parameter('upper_fraction', value=0.6)])[0].successful
    assert node.params.upper_fraction == 0.6
    read_only = node.set_parameters([Parameter('face_detector', value='cnn')])[0]
    assert not read_only.successful and 'read-only' in read_only.reason
    node.destroy_node()
