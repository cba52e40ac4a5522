"""detector lifecycle node over real DDS with the real YOLOv8n ONNX model on real frames."""

from types import SimpleNamespace

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import pytest
from rclpy import create_node
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from facetrack_ros.conversions import bgr_to_compressed, bgr_to_image, camera_info
from facetrack_ros.core.camera import reduce_image
from facetrack_ros.core.detection import DEFAULT_CONFIDENCE
from facetrack_ros import detector_node
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


def _active(ros_context, shared_dir, probe: str, **parameters):
    """Return an active detector, its executor, a probe node and the probe's detections.

    The detector runs the shared ONNX model on reliable images, with parameters on top.
    """
    node = DetectorNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=str(shared_dir / 'models' / 'yolov8n_int8.onnx')),
        Parameter('image_qos', value='reliable'),
        *(Parameter(name, value=value) for name, value in parameters.items())])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    helper = create_node(probe, context=ros_context)
    executor.add_node(helper)
    received: list[PersonDetectionArray] = []
    helper.create_subscription(PersonDetectionArray, 'detections', received.append,
                               RELIABLE_QOS)
    return node, executor, helper, received


def test_detects_persons_keeps_header_survives_bad_input(ros_context, shared_dir):
    """Real raw frame in, persons out with the same header; a malformed image is skipped."""
    node, executor, helper, received = _active(ros_context, shared_dir, 'detector_probe',
                                               image_transport='raw')
    assert len(node.detectors) == 2, 'one model per worker (workers: 0 chooses two here)'
    assert node.diagnostics.values['workers'] == '2'
    assert all('yolo' in d.name.lower() or 'onnx' in d.name.lower() for d in node.detectors)
    images = helper.create_publisher(Image, 'image_detect', image_qos_profile('reliable'))
    assert spin_until(executor, lambda: images.get_subscription_count() > 0)

    bad = Image(height=10, width=10, encoding='bgr8', step=30, data=b'\x00' * 7)
    bad.header.frame_id = 'bad'
    images.publish(bad)
    # A newer image would replace it while the workers are busy: let them take it first.
    assert spin_until(executor, lambda: node.diagnostics.errors == 1, timeout=10.0)
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
        assert DEFAULT_CONFIDENCE <= detection.confidence <= 1.0
    assert node.diagnostics.errors == 1, 'the malformed image is counted, not fatal'

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert not node.detectors and node.workers is None, 'cleanup frees the models'
    executor.shutdown()
    node.destroy_node()
    helper.destroy_node()


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_reduced_stream_gives_boxes_in_full_resolution_pixels(ros_context, shared_dir):
    """image_detect reduced, camera_info full: the boxes are the full frame's, header kept.

    A 1440x1080 frame (a street frame, upscaled) is detected once whole and once reduced to
    640x480 as the camera reduces it, with the full frame's camera_info, both as the JPEG the
    detector reads by default: both give the same people in the same full-resolution boxes,
    with the reduced image's header. A corrupt JPEG is counted and skipped.
    """
    node, executor, helper, received = _active(ros_context, shared_dir, 'detector_scale_probe')
    qos = image_qos_profile('reliable')
    images = helper.create_publisher(CompressedImage, 'image_detect/compressed', qos)
    infos = helper.create_publisher(CameraInfo, 'camera_info', qos)
    assert spin_until(executor, lambda: images.get_subscription_count() > 0
                      and infos.get_subscription_count() > 0)

    images.publish(CompressedImage(format='jpeg', data=b'\xff\xd8 not a jpeg'))
    assert spin_until(executor, lambda: node.diagnostics.errors == 1, timeout=10.0), \
        'the corrupt JPEG is counted, not fatal'
    full = cv2.resize(_frame(shared_dir), (1440, 1080), interpolation=cv2.INTER_CUBIC)
    whole = bgr_to_compressed(full, Header(stamp=Time(sec=1_700_000_001)), 90)
    images.publish(whole)   # no camera_info yet: boxes in the input's own pixels
    assert spin_until(executor, lambda: len(received) == 1, timeout=30.0)

    small = reduce_image(full, 640)
    assert small.shape == (480, 640, 3)
    reduced = bgr_to_compressed(
        small, Header(stamp=Time(sec=1_700_000_002), frame_id='street_optical'), 90)
    infos.publish(camera_info(reduced.header, 1440, 1080))
    assert spin_until(executor, lambda: node.latest_info is not None, timeout=10.0)
    images.publish(reduced)
    assert spin_until(executor, lambda: len(received) == 2, timeout=30.0)

    direct, scaled = received
    assert direct.header == whole.header and scaled.header == reduced.header
    assert (direct.image_width, direct.image_height) == (1440, 1080)
    assert (scaled.image_width, scaled.image_height) == (1440, 1080)
    assert len(direct.detections) >= 3, 'the street frame shows several pedestrians'
    for detection in scaled.detections:
        box = np.asarray(detection.box)
        assert 0 <= box[0] < box[2] <= 1440 and 0 <= box[1] < box[3] <= 1080
    # The two JPEGs differ a little (a person near the threshold may be in one only, a small
    # one a few pixels off): every clear detection of each is in the other, most of them at
    # the same place. A box left in the reduced image's pixels would overlap nothing.
    overlaps = []
    for ours, theirs in ((scaled, direct), (direct, scaled)):
        for detection in ours.detections:
            if detection.confidence >= 0.5:
                overlaps.append(max(_iou(detection.box, d.box) for d in theirs.detections))
    assert len(overlaps) >= 6 and min(overlaps) > 0.5, overlaps
    assert np.median(overlaps) > 0.9, overlaps
    for detection in scaled.detections:
        assert len(detection.appearance) > 0, 'the body descriptor comes with the box'
    executor.shutdown()
    node.destroy_node()
    helper.destroy_node()


def test_missing_model_fails_configure_when_required(ros_context, tmp_path):
    """require_model with no model file: configure fails, naming the parameter."""
    node = DetectorNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=str(tmp_path / 'absent.onnx')),
        Parameter('require_model', value=True)])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert not node.detectors
    assert 'model' in node.diagnostics.message
    node.destroy_node()


def test_images_detected_at_once_are_published_in_their_order(ros_context, shared_dir):
    """Images while both workers are busy: detections leave in order, the newest among them.

    Each worker spends a second on an image (simulated_delay); the first two images are taken
    by the two workers, ten more come while they are busy: the newest waits and replaces an
    older one waiting. Every image is accounted for: detected, or replaced before a worker
    took it (the diagnostics' `dropped inputs`).
    """
    node, executor, helper, received = _active(ros_context, shared_dir, 'detector_order_probe',
                                               image_transport='raw', simulated_delay=1.0,
                                               workers=2)
    assert len(node.detectors) == 2, 'one model per worker'
    images = helper.create_publisher(Image, 'image_detect', image_qos_profile('reliable'))
    assert spin_until(executor, lambda: images.get_subscription_count() > 0)

    frame = bgr_to_image(_frame(shared_dir))
    counts = node.workers.counts
    for second in range(1, 13):
        frame.header.stamp.sec = 1_700_000_000 + second
        images.publish(frame)
        # One at a time, so that no image is lost in the subscription's queue; the first two
        # each wait until a worker took it.
        assert spin_until(executor, lambda: counts.submitted == second
                          and (second > 2 or counts.taken == second), timeout=10.0), counts
    assert spin_until(executor, lambda: any(
        msg.header.stamp.sec == 1_700_000_012 for msg in received), timeout=60.0), counts
    assert len(received) == counts.delivered == counts.taken == 12 - counts.replaced, counts
    stamps = [msg.header.stamp.sec - 1_700_000_000 for msg in received]
    assert stamps[:2] == [1, 2] and stamps[-1] == 12, stamps
    assert stamps == sorted(set(stamps)), stamps
    assert all(len(msg.detections) >= 3 for msg in received)
    executor.spin_once(timeout_sec=1.5)  # a diagnostics period
    assert node.diagnostics.dropped == counts.replaced
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    executor.shutdown()
    node.destroy_node()
    helper.destroy_node()


def test_a_worker_of_an_earlier_configure_publishes_nothing_after_it(ros_context, shared_dir):
    """A detection still running when cleanup stopped waiting (5 s) is dropped when it ends.

    Before, it came out through the next configure's publisher, an image nobody had sent it.
    """
    node, executor, helper, received = _active(ros_context, shared_dir, 'stale_probe',
                                               image_transport='raw', simulated_delay=6.5,
                                               workers=1)
    images = helper.create_publisher(Image, 'image_detect', image_qos_profile('reliable'))
    assert spin_until(executor, lambda: images.get_subscription_count() > 0)
    frame = bgr_to_image(_frame(shared_dir))
    frame.header.stamp.sec = 1_700_000_111
    images.publish(frame)
    assert spin_until(executor, lambda: node.workers.counts.taken == 1)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS   # waits 5 s
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    spin_until(executor, lambda: bool(received), timeout=3.0)   # the old step ends meanwhile
    assert not received, [msg.header.stamp.sec for msg in received]
    executor.shutdown()
    node.destroy_node()
    helper.destroy_node()


def test_workers_that_load_different_detectors_or_fail_oddly_fail_configure(
        ros_context, shared_dir, monkeypatch):
    """A worker's model falling back, or any fault loading it: configure fails, saying why.

    The second worker's copy missing (as one that runs out of memory) would run face-first
    beside YOLO; an exception rclpy swallows left no reason. Nothing stays half loaded.
    """
    loaded = []
    real = detector_node.person_detector

    def second_falls_back(p: SimpleNamespace, workers: int):
        loaded.append(p.model)
        return real(p if len(loaded) == 1 else SimpleNamespace(**{
            **vars(p), 'model': 'absent.onnx'}), workers)

    def broken(p: SimpleNamespace, workers: int):
        raise RuntimeError('simulated fault')

    node = DetectorNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=str(shared_dir / 'models' / 'yolov8n_int8.onnx')),
        Parameter('workers', value=2)])
    monkeypatch.setattr(detector_node, 'person_detector', second_falls_back)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert 'workers loaded different detectors' in node.diagnostics.message
    assert not node.detectors
    monkeypatch.setattr(detector_node, 'person_detector', broken)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "cannot load the person model: RuntimeError('simulated fault')" in (
        node.diagnostics.message)
    node.destroy_node()
