"""detector node: the body cue it publishes with each box, and its test-only delay."""

import time

import cv2
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from facetrack_ros.conversions import bgr_to_image
from facetrack_ros.detector_node import DetectorNode
from facetrack_ros.msg import PersonDetectionArray
from facetrack_ros.parameters import image_qos_profile, RELIABLE_QOS
from rostest_utils import spin_until

pytestmark = pytest.mark.ros


def _detect(context, shared_dir, **overrides) -> tuple[PersonDetectionArray, float]:
    """Run a detector node on one street frame; return its detections and the wait [s]."""
    node = DetectorNode(context=context, parameter_overrides=[
        Parameter('model', value=str(shared_dir / 'models' / 'yolov8n_int8.onnx')),
        Parameter('image_qos', value='reliable'), Parameter('image_transport', value='raw'),
        *(Parameter(k, value=v) for k, v in overrides.items())])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    probe = create_node('cue_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    received: list[PersonDetectionArray] = []
    probe.create_subscription(PersonDetectionArray, 'detections', received.append,
                              RELIABLE_QOS)
    images = probe.create_publisher(Image, 'image_detect', image_qos_profile('reliable'))
    assert spin_until(executor, lambda: images.get_subscription_count() > 0)
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / 'pedestrians_vtest.avi'))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    frame = capture.read()[1]
    start = time.monotonic()
    images.publish(bgr_to_image(frame))
    assert spin_until(executor, lambda: bool(received), timeout=30.0)
    waited = time.monotonic() - start
    executor.shutdown()
    node.destroy_node()
    probe.destroy_node()
    return received[0], waited


def test_boxes_carry_a_unit_body_descriptor_unless_switched_off(ros_context, shared_dir):
    """Every box has a unit appearance descriptor; different pedestrians differ."""
    out, _ = _detect(ros_context, shared_dir)
    assert len(out.detections) >= 3
    descriptors = np.array([d.appearance for d in out.detections])
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=1), 1.0, atol=1e-4)
    similarity = descriptors @ descriptors.T
    assert np.min(similarity) < 0.9, 'pedestrians in different clothes look different'
    bare, _ = _detect(ros_context, shared_dir, appearance=False)
    assert all(len(d.appearance) == 0 for d in bare.detections)


def test_simulated_delay_slows_each_image(ros_context, shared_dir):
    """simulated_delay adds its time to every image (the slow-detector load case)."""
    _, quick = _detect(ros_context, shared_dir)
    _, slow = _detect(ros_context, shared_dir, simulated_delay=2.0)
    assert slow >= 2.0 and slow >= quick + 1.5, (quick, slow)
