"""detector lifecycle node over real DDS with the real YOLOv8n ONNX model on real frames."""

import cv2
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


def _frame(shared_dir, index: int = 100):
    capture = cv2.VideoCapture(str(shared_dir / 'data' / 'video' / 'pedestrians_vtest.avi'))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    assert ok
    return frame


def test_detects_persons_keeps_header_survives_bad_input(ros_context, shared_dir):
    """Real frame in, persons out with the same header; a malformed image is skipped."""
    model = str(shared_dir / 'models' / 'yolov8n_int8.onnx')
    node = DetectorNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=model), Parameter('image_qos', value='reliable')])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert 'yolo' in node.detector.name.lower() or 'onnx' in node.detector.name.lower()

    helper = create_node('detector_probe', context=ros_context)
    executor.add_node(helper)
    received: list[PersonDetectionArray] = []
    helper.create_subscription(PersonDetectionArray, 'detections', received.append,
                               RELIABLE_QOS)
    images = helper.create_publisher(Image, 'image_raw', image_qos_profile('reliable'))
    assert spin_until(executor, lambda: images.get_subscription_count() > 0)

    bad = Image(height=10, width=10, encoding='bgr8', step=30, data=b'\x00' * 7)
    bad.header.frame_id = 'bad'
    images.publish(bad)
    good = bgr_to_image(_frame(shared_dir))
    good.header.stamp.sec, good.header.stamp.nanosec = 1_700_000_123, 456
    good.header.frame_id = 'street_cam'
    images.publish(good)
    assert spin_until(executor, lambda: bool(received), timeout=30.0)

    out = received[0]
    assert out.header == good.header, 'the detections must carry the image header'
    assert (out.image_width, out.image_height) == (good.width, good.height)
    assert len(out.detections) >= 3, 'the street frame shows several pedestrians'
    for detection in out.detections:
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 < x2 <= good.width and 0 <= y1 < y2 <= good.height
        assert 0.35 <= detection.confidence <= 1.0
    assert node.diagnostics.errors == 1, 'the malformed image is counted, not fatal'

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.detector is None, 'cleanup frees the model'
    executor.shutdown()
    node.destroy_node()
    helper.destroy_node()


def test_missing_model_fails_configure_when_required(ros_context, tmp_path):
    """require_model with no model file: configure fails, naming the parameter."""
    node = DetectorNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=str(tmp_path / 'absent.onnx')),
        Parameter('require_model', value=True)])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.detector is None
    assert 'model' in node.diagnostics.message
    node.destroy_node()
